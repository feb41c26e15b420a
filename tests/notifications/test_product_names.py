"""Product names, learned from product.* events, are what people read: handoff, email, Slack."""

from __future__ import annotations

import json

from sqlalchemy import select

from tests.notifications.builders import EMAIL, T0, charge, invoice
from tests.notifications.harness import deliver_all, run
from tests.support import customer, envelope, subscription
from worker.store.db import read_session
from worker.store.tables import CaseRow

OPAQUE = "prod_NWjs8kKbJWmuuc"  # a real-looking Stripe id: never shown to a customer as a name


def product_event(name: str = "Pro Plus") -> str:
    product = {"id": OPAQUE, "object": "product", "active": True, "name": name, "metadata": {}}
    return envelope("evt_prod", "product.created", product, T0 - 100 * 86_400)


def renewal_failure() -> list[str]:
    """A customer on the opaque product whose renewal payment failed."""
    return [
        envelope("evt_cus", "customer.created", customer("cus_1", EMAIL, created=T0 - 90 * 86_400),
                 T0 - 90 * 86_400),
        envelope("evt_sub", "customer.subscription.created",
                 subscription("sub_1", "cus_1", created=T0 - 60 * 86_400, product=OPAQUE),
                 T0 - 60 * 86_400),
        envelope("evt_chg", "charge.failed", charge("ch_fail", created=T0 + 3500, status="failed"),
                 T0 + 3500),
        envelope("evt_inv", "invoice.payment_failed", invoice(), T0 + 3600),
    ]  # fmt: skip


def handoff(engine) -> dict[str, str]:
    with read_session(engine) as session:
        (row,) = session.scalars(select(CaseRow))
        return json.loads(row.handoff)


def test_learned_name_is_used_in_handoff_email_and_slack(engine, channels, policy, smtp, slack):
    """With product.created seen, every rendering says "Pro Plus", never the product id."""
    ids = run(engine, [product_event(), *renewal_failure()], policy)
    deliver_all(engine, ids, channels)
    sections = handoff(engine)
    assert "1 × Pro Plus 29.00 USD/month" in sections["billing_state"]
    assert "your renewal payment for Pro Plus" in sections["follow_up"]
    [message] = smtp.inbox.messages
    assert message["Subject"] == "Your Pro Plus payment didn't go through"
    assert "Pro Plus subscription" in message.get_body(("plain",)).get_content()
    posted = " ".join(request.get_data(as_text=True) for request, _ in slack.log)
    assert "*Plan:* Pro Plus" in posted
    for text in (*sections.values(), message.as_string(), posted):
        assert OPAQUE not in text


def test_unknown_name_falls_back_to_the_id_for_operators_only(engine, channels, policy, smtp):
    """Without the product event: the handoff shows the id, the customer's email no id at all."""
    ids = run(engine, renewal_failure(), policy)
    deliver_all(engine, ids, channels)
    assert f"1 × {OPAQUE} 29.00 USD/month" in handoff(engine)["billing_state"]
    [message] = smtp.inbox.messages
    assert OPAQUE not in message.as_string()
    assert message["Subject"] == "Your subscription payment didn't go through"
