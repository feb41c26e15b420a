"""An absurd amount or currency reaches no one as text: email, Slack, handoff show a marker."""

from __future__ import annotations

import json

from sqlalchemy import select

from tests.notifications.builders import failed_renewal_events
from tests.notifications.harness import deliver_all, run
from worker.store.db import read_session
from worker.store.tables import CaseRow


def _with_invoice(bodies: list[str], **changes: object) -> list[str]:
    """The failed-renewal events with the invoice's fields changed (the last event)."""
    last = json.loads(bodies[-1])
    last["data"]["object"].update(changes)
    return [*bodies[:-1], json.dumps(last)]


def _handoff_text(engine) -> str:
    with read_session(engine) as session:
        return " ".join(row.handoff for row in session.scalars(select(CaseRow)))


def test_absurd_invoice_amount_and_currency_render_as_markers(
    engine, channels, policy, smtp, slack
):
    """amount 10**30 and currency "<!channel>": email, Slack and handoff carry only markers."""
    bodies = _with_invoice(
        failed_renewal_events(),
        amount_due=10**30,
        amount_remaining=10**30,
        total=10**30,
        currency="<!channel>",
    )
    ids = run(engine, bodies, policy)
    deliver_all(engine, ids, channels)
    [message] = smtp.inbox.messages
    email_text = message.get_body(("plain",)).get_content()
    slack_text = " ".join(request.get_data(as_text=True) for request, _ in slack.log)
    handoff = _handoff_text(engine)
    for shown in (email_text, slack_text, handoff):
        assert "channel>" not in shown.lower() and "000000000000" not in shown
    assert "[invalid amount]" in email_text
    assert "[invalid amount]" in handoff


def test_negative_and_overlong_currency_render_as_markers(engine, channels, policy, smtp, slack):
    """A negative amount and a 50-character currency never show as numbers or text."""
    bodies = _with_invoice(failed_renewal_events(), amount_due=-2900, currency="usd" + "x" * 47)
    ids = run(engine, bodies, policy)
    deliver_all(engine, ids, channels)
    [message] = smtp.inbox.messages
    email_text = message.get_body(("plain",)).get_content()
    handoff = _handoff_text(engine)
    assert "[invalid currency]" in email_text
    assert "[invalid amount]" in handoff
    for shown in (email_text, handoff):
        assert "xxxxx" not in shown.lower() and "-29" not in shown
