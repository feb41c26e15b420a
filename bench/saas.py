"""A generated "quarter of a SaaS": the Stripe events of N customers over 90 days.

Shared by the throughput benchmarks (``e2e.py``, ``replay.py``, ``history.py``) so that each
figure comes from the same traffic. Every customer signs up (``customer.created``, a
subscription, its first paid invoice and charge) and renews monthly; a seeded few fail a
renewal (then pay three days later or go ``past_due``), subscribe twice to the same product
(a duplicate), set ``cancel_at_period_end`` or dispute their first charge. The shapes are the
test fixtures' (``tests/fixtures/events``, API 2025-09-30.clover) with ids and times
rewritten; events come out in ``created`` order, as a live account sends them.

    .venv/bin/python bench/saas.py --customers 320 > quarter.jsonl    # 2,7xx events
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "tests" / "fixtures" / "events"
#: 2025-10-01T00:00:00Z, the first day of the quarter.
T0 = 1_759_276_800
DAY = 86_400
QUARTER_DAYS = 90
#: Customers that give about 2,700 events (the issue's end-to-end run) and about 7,600 (replay).
E2E_CUSTOMERS = 334
REPLAY_CUSTOMERS = 934


@dataclass(frozen=True)
class Odds:
    """How often each story happens, per customer (or per renewal for ``failed_renewal``)."""

    failed_renewal: float = 0.08
    failed_then_paid: float = 0.5
    duplicate_subscription: float = 0.04
    cancel_at_period_end: float = 0.05
    dispute: float = 0.01


def _template(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())["data"]["object"]


class Templates:
    """Fixture objects, loaded once."""

    def __init__(self) -> None:
        self.customer = _template("customer.created__current.json")
        self.subscription = _template("customer.subscription.updated__cancel_at_period_end.json")
        self.invoice_paid = _template("invoice.paid__current_payments.json")
        self.invoice_failed = _template("invoice.payment_failed__current_renewal.json")
        self.charge = _template("charge.succeeded__card.json")
        self.dispute = _template("charge.dispute.created__subscription_canceled.json")


def _rewrite(obj: dict[str, Any], ids: dict[str, str]) -> dict[str, Any]:
    text = json.dumps(obj)
    for old, new in ids.items():
        text = text.replace(old, new)
    return json.loads(text)


def _envelope(event_id: str, event_type: str, obj: dict[str, Any], created: int) -> str:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "api_version": "2025-09-30.clover",
            "created": created,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
            "data": {"object": obj},
        },
        separators=(",", ":"),
    )


class Customer:
    """The ids of one generated customer and the event builders that use them."""

    def __init__(self, templates: Templates, index: int, tag: str) -> None:
        self.t = templates
        self.n = 0
        self.index = index
        self.stem = f"{tag}{index:07d}"
        self.id = f"cus_{self.stem}"
        self.email = f"user{self.stem}@example.com"

    def event_id(self) -> str:
        self.n += 1
        return f"evt_{self.stem}_{self.n:03d}"

    def customer_created(self, at: int) -> tuple[int, str]:
        obj = _rewrite(self.t.customer, {"cus_Ada": self.id, "pm_AdaVisa": f"pm_{self.stem}"})
        obj.update(email=self.email, name=f"Customer {self.index}", created=at)
        return at, _envelope(self.event_id(), "customer.created", obj, at)

    def subscription(self, sub: str, at: int, *, status: str = "active", cancel: bool = False,
                     started: int | None = None) -> dict[str, Any]:  # fmt: skip
        start = started if started is not None else at
        obj = _rewrite(self.t.subscription, {"sub_Cur": sub, "si_Cur": f"si_{sub[4:]}",
                                              "cus_Ada": self.id})  # fmt: skip
        period_start = start + ((at - start) // (30 * DAY)) * 30 * DAY
        obj.update(created=start, start_date=start, billing_cycle_anchor=start, status=status,
                   cancel_at_period_end=cancel,
                   cancel_at=period_start + 30 * DAY if cancel else None,
                   canceled_at=at if cancel else None,
                   default_payment_method=f"pm_{self.stem}")  # fmt: skip
        if not cancel:
            obj["cancellation_details"] = {"comment": None, "feedback": None, "reason": None}
        item = obj["items"]["data"][0]
        item.update(created=start, current_period_start=period_start,
                    current_period_end=period_start + 30 * DAY)  # fmt: skip
        return obj

    def subscription_event(self, event_type: str, sub: str, at: int, **kw: Any) -> tuple[int, str]:
        return at, _envelope(self.event_id(), event_type, self.subscription(sub, at, **kw), at)

    def invoice(self, sub: str, number: int, at: int, *, paid: bool, attempt: int = 1,
                reason: str = "subscription_cycle") -> tuple[int, str]:  # fmt: skip
        inv = f"in_{self.stem}_{sub[-1]}{number}"
        ids = {"in_CurFirst": inv, "in_Renewal": inv, "il_CurFirst": f"il_{inv[3:]}",
               "il_Renewal": f"il_{inv[3:]}", "inpay_CurFirst": f"inpay_{inv[3:]}",
               "pi_CurFirst": f"pi_{inv[3:]}", "sub_Cur": sub, "si_Cur": f"si_{sub[4:]}",
               "cus_Ada": self.id, "ada@example.com": self.email}  # fmt: skip
        obj = _rewrite(self.t.invoice_paid if paid else self.t.invoice_failed, ids)
        obj.update(created=at, period_start=at - 30 * DAY, period_end=at, attempt_count=attempt,
                   billing_reason=reason)  # fmt: skip
        obj["status_transitions"]["finalized_at"] = at
        if paid:
            obj["status_transitions"]["paid_at"] = at
        else:
            obj["next_payment_attempt"] = at + 3 * DAY
        obj["lines"]["data"][0]["period"] = {"start": at, "end": at + 30 * DAY}
        event_type = "invoice.paid" if paid else "invoice.payment_failed"
        return at, _envelope(self.event_id(), event_type, obj, at)

    def charge(self, sub: str, number: int, at: int) -> tuple[int, str]:
        ref = f"{self.stem}_{sub[-1]}{number}"
        obj = _rewrite(self.t.charge, {"ch_CurFirst": f"ch_{ref}", "pi_CurFirst": f"pi_{ref}",
                                       "pm_CurFirst": f"pm_{self.stem}", "cus_Ada": self.id,
                                       "Ada@Example.com": self.email,
                                       "fp_AdaVisa4242": f"fp_{self.stem}"})  # fmt: skip
        obj["created"] = at
        return at, _envelope(self.event_id(), "charge.succeeded", obj, at)

    def dispute(self, sub: str, number: int, at: int) -> tuple[int, str]:
        ref = f"{self.stem}_{sub[-1]}{number}"
        obj = _rewrite(self.t.dispute, {"dp_Canceled": f"dp_{ref}", "ch_CurFirst": f"ch_{ref}",
                                        "pi_CurFirst": f"pi_{ref}"})  # fmt: skip
        obj["created"] = at
        obj["evidence_details"]["due_by"] = at + 14 * DAY
        return at, _envelope(self.event_id(), "charge.dispute.created", obj, at)


def customer_story(
    templates: Templates, index: int, rng: random.Random, odds: Odds, tag: str
) -> list[tuple[int, str]]:
    """One customer's quarter: (created, event JSON) pairs, in no particular order."""
    c = Customer(templates, index, tag)
    joined = T0 + rng.randrange(0, 30 * DAY)
    sub = f"sub_{c.stem}a"
    events = [
        c.customer_created(joined),
        c.subscription_event("customer.subscription.created", sub, joined + 5),
        c.invoice(sub, 0, joined + 10, paid=True, reason="subscription_create"),
        c.charge(sub, 0, joined + 12),
    ]
    if rng.random() < odds.duplicate_subscription:
        dup = f"sub_{c.stem}b"
        events += [
            c.subscription_event("customer.subscription.created", dup, joined + 65),
            c.invoice(dup, 0, joined + 70, paid=True, reason="subscription_create"),
            c.charge(dup, 0, joined + 72),
        ]
    if rng.random() < odds.dispute:
        events.append(c.dispute(sub, 0, joined + 20 * DAY))
    month = 1
    while (renewal := joined + month * 30 * DAY) < T0 + QUARTER_DAYS * DAY:
        if rng.random() < odds.failed_renewal:
            events.append(c.invoice(sub, month, renewal, paid=False))
            if rng.random() < odds.failed_then_paid:
                events.append(c.invoice(sub, month, renewal + 3 * DAY, paid=True, attempt=2))
                events.append(c.charge(sub, month, renewal + 3 * DAY + 2))
            else:
                events.append(c.subscription_event("customer.subscription.updated", sub,
                                                   renewal + 60, status="past_due",
                                                   started=joined + 5))  # fmt: skip
                break
        else:
            events.append(c.invoice(sub, month, renewal, paid=True))
            events.append(c.charge(sub, month, renewal + 2))
        month += 1
    if rng.random() < odds.cancel_at_period_end:
        at = joined + rng.randrange(DAY, 60 * DAY)
        events.append(c.subscription_event("customer.subscription.updated", sub, at, cancel=True,
                                           started=joined + 5))  # fmt: skip
    return events


def quarter(
    customers: int, *, seed: int = 11, tag: str = "q", odds: Odds | None = None
) -> list[str]:
    """The quarter's events (JSON strings), oldest first."""
    rng = random.Random(seed)
    templates = Templates()
    stamped: list[tuple[int, str]] = []
    for index in range(customers):
        stamped += customer_story(templates, index, rng, odds or Odds(), tag)
    stamped.sort(key=lambda pair: pair[0])
    return [body for _, body in stamped]


def iter_quarter(customers: int, **kwargs: Any) -> Iterator[str]:
    yield from quarter(customers, **kwargs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=E2E_CUSTOMERS)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    for body in quarter(args.customers, seed=args.seed):
        sys.stdout.write(body + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
