"""Customer stories whose findings change with time alone, for the clock's tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.support import customer, envelope, subscription

DAY = 86_400
T0 = 1_767_225_600  # 2026-01-01
TRIAL_END = T0 + 14 * DAY
CARD_EXPIRES = int(datetime(2026, 7, 1, tzinfo=UTC).timestamp())  # a 06/2026 card


def at(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def trial_without_card(
    customer_id: str = "cus_T",
    sub_id: str = "sub_T",
    *,
    start: int = T0,
    trial_end: int = TRIAL_END,
) -> list[str]:
    """A customer with no payment method starts a trial at ``start``."""
    person = customer(customer_id, f"{customer_id}@example.com", created=start)
    person["invoice_settings"] = {"default_payment_method": None}
    trial = subscription(sub_id, customer_id, created=start, status="trialing")
    trial.update(trial_start=start, trial_end=trial_end, default_payment_method=None)
    return [
        envelope(f"evt_{customer_id}_1", "customer.created", person, start),
        envelope(f"evt_{customer_id}_2", "customer.subscription.created", trial, start),
    ]


def paying_with_card(customer_id: str = "cus_C", exp: tuple[int, int] = (6, 2026)) -> list[str]:
    """A customer paying monthly with a card that expires at the end of ``exp``: the
    subscription's default payment method, so it is the card renewals use."""
    card: dict[str, Any] = {
        "id": f"pm_{customer_id}",
        "object": "payment_method",
        "type": "card",
        "customer": customer_id,
        "created": T0,
        "card": {
            "brand": "visa",
            "last4": "4242",
            "exp_month": exp[0],
            "exp_year": exp[1],
            "fingerprint": f"fp_{customer_id}",
        },
    }
    sub = subscription(f"sub_{customer_id}", customer_id, created=T0)
    sub["default_payment_method"] = card["id"]
    return [
        envelope(f"evt_{customer_id}_1", "customer.created",
                 customer(customer_id, f"{customer_id}@example.com", created=T0), T0),
        envelope(f"evt_{customer_id}_2", "customer.subscription.created", sub, T0),
        envelope(f"evt_{customer_id}_3", "payment_method.attached", card, T0),
    ]  # fmt: skip
