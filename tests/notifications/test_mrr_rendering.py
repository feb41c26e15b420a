"""Monthly revenue billing-ops cannot know reads "unknown" in the handoff, Slack and the digest."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from tests.notifications.builders import T0
from tests.notifications.harness import NOW, deliver_all, run
from tests.support import customer, envelope, subscription
from worker.notifications.digest import build_digest, render_text
from worker.store.db import read_session
from worker.store.tables import CaseRow

EMAIL = "mia@example.com"


def _cancel_story(sub: dict) -> list[str]:
    """A customer whose subscription is then set to cancel at the period end."""
    canceling = {**sub, "cancel_at_period_end": True, "cancel_at": T0 + 30 * 86_400}
    return [
        envelope("evt_cus", "customer.created", customer("cus_1", EMAIL, created=T0), T0),
        envelope("evt_sub", "customer.subscription.created", sub, T0),
        envelope(
            "evt_upd",
            "customer.subscription.updated",
            canceling,
            T0 + 86_400,
            previous_attributes={"cancel_at_period_end": False},
        ),
    ]


def _metered_subscription() -> dict:
    sub = subscription("sub_1", "cus_1", created=T0, product="prod_api", amount=10)
    sub["items"]["data"][0]["price"]["recurring"]["usage_type"] = "metered"
    return sub


def _handoff(engine) -> str:
    with read_session(engine) as session:
        (row,) = session.scalars(select(CaseRow))
        return " ".join(json.loads(row.handoff).values())


def test_metered_subscription_revenue_reads_unknown_everywhere(engine, channels, policy, slack):
    """A metered price: handoff, Slack alert and digest say unknown, never 0.10 USD a month."""
    ids = run(engine, _cancel_story(_metered_subscription()), policy)
    deliver_all(engine, ids, channels)
    handoff = _handoff(engine)
    assert "monthly revenue unknown (metered usage)" in handoff
    assert "unknown amount/month" in handoff  # the decision's reasoning
    posted = " ".join(request.get_data(as_text=True) for request, _ in slack.log)
    assert "MRR at risk unknown" in posted
    text = render_text(build_digest(engine, since=NOW - timedelta(days=1), now=NOW))
    assert "1 unknown" in text and "0.10 USD" not in text


def test_trialing_subscription_bills_nothing_until_the_trial_ends(engine):
    """The handoff of a trial shows 0 now and the price after the trial."""
    sub = subscription("sub_1", "cus_1", created=T0, status="trialing")
    sub.update(trial_start=T0, trial_end=T0 + 14 * 86_400)
    run(engine, _cancel_story(sub), None)
    assert "monthly revenue 0 during the trial, then 29.00 USD" in _handoff(engine)
