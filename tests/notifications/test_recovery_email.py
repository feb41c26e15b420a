"""Recovery emails for failed renewals: one per invoice attempt, with a link to fix payment."""

from __future__ import annotations

import dataclasses
import json

from tests.notifications.builders import (
    EMAIL,
    HOSTED,
    failed_renewal_events,
    incomplete_checkout_events,
    invoice_paid_event,
)
from tests.notifications.harness import NOW, deliver_all, outbox_rows, run, timeline
from worker.notifications.delivery import Channels


def test_failed_renewal_sends_one_email_with_the_link_and_one_slack_message(
    engine, channels, policy, smtp, slack
):
    """A failed renewal produces exactly one recovery email (with the link) and one Slack post."""
    ids = run(engine, failed_renewal_events(), policy)
    results = deliver_all(engine, ids, channels)
    assert sorted(r.status for r in results) == ["sent", "sent"]
    [message] = smtp.inbox.messages
    assert message["To"] == EMAIL
    assert message["Subject"] == "Your Pro payment didn't go through"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert HOSTED in text and HOSTED in html
    assert "29.00 USD" in text and "Visa card ending in 4242" in text
    assert len(slack.log) == 1
    posted = json.loads(slack.log[0][0].get_data())
    assert "Failed renewal" in posted["blocks"][0]["text"]["text"]


def test_billing_portal_session_is_the_link_when_stripe_is_configured(
    engine, configured, policy, smtp, slack, httpserver
):
    """With STRIPE_API_KEY the email carries a billing-portal session created at send time."""
    portal = "https://billing.stripe.com/p/session/test_portal_1"
    httpserver.expect_request("/v1/billing_portal/sessions", method="POST").respond_with_json(
        {"id": "bps_1", "object": "billing_portal.session", "url": portal}
    )
    settings = dataclasses.replace(
        configured,
        stripe_api_key="sk_test_notifications",
        stripe_api_base=httpserver.url_for("/").rstrip("/"),
        portal_return_url="https://app.acme.test/account",
    )
    ids = run(engine, failed_renewal_events(), policy)
    deliver_all(engine, ids, Channels.from_settings(settings))
    [message] = smtp.inbox.messages
    assert portal in message.get_body(("plain",)).get_content()
    assert HOSTED not in message.get_body(("plain",)).get_content()
    [request] = [r for r, _ in httpserver.log if r.path == "/v1/billing_portal/sessions"]
    assert request.form["customer"] == "cus_1"
    assert request.form["return_url"] == "https://app.acme.test/account"
    assert timeline(engine)[-1][1].endswith("link: billing portal)")


def test_invoice_paid_before_the_send_cancels_the_email(engine, channels, policy, smtp, slack):
    """An invoice.paid processed before delivery cancels the pending email: nothing is sent."""
    ids = run(engine, failed_renewal_events(), policy)
    run(engine, [invoice_paid_event()], policy)
    results = deliver_all(engine, ids, channels)
    assert smtp.inbox.messages == []
    email_row = next(r for r in outbox_rows(engine) if r.channel == "email")
    assert email_row.status == "cancelled"
    assert ("notification_cancelled", "recovery email not sent: invoice in_1 is paid") in timeline(
        engine
    )
    assert [r.status for r in results if r.outbox_id == email_row.id] == ["done"]


def test_each_failed_attempt_gets_its_own_single_email(engine, channels, policy, smtp, slack):
    """Attempt 1 and attempt 2 of one invoice send one email each, never more."""
    first = run(engine, failed_renewal_events(attempt=1), policy)
    deliver_all(engine, first, channels)
    second = run(engine, failed_renewal_events(attempt=2)[-1:], policy)
    deliver_all(engine, second + first, channels)
    assert len(smtp.inbox.messages) == 2
    assert len(slack.log) == 1
    keys = sorted(r.dedupe_key for r in outbox_rows(engine) if r.channel == "email")
    assert keys == ["case:1:email:recovery_email:in_1:1", "case:1:email:recovery_email:in_1:2"]


def test_recipient_refused_with_550_fails_without_retry(engine, channels, policy, smtp, slack):
    """An SMTP 550 for the recipient is permanent: no retry, and the case timeline says why."""
    smtp.inbox.refuse[EMAIL] = f"550 5.1.1 <{EMAIL}>: Recipient address rejected"
    ids = run(engine, failed_renewal_events(), policy)
    results = deliver_all(engine, ids, channels)
    email_row = next(r for r in outbox_rows(engine) if r.channel == "email")
    assert email_row.status == "failed" and email_row.attempts == 1
    assert [r.retry_at for r in results] == [None, None]
    [(action, note)] = [e for e in timeline(engine) if e[0] == "notification_failed"]
    assert "550" in note and "recovery email failed permanently" in note
    assert EMAIL not in note and EMAIL not in (email_row.last_error or "")
    assert deliver_all(engine, [email_row.id], channels)[0].status == "done"
    assert smtp.inbox.messages == []


def test_smtp_server_down_is_retried_then_delivered_once(engine, channels, policy, smtp, slack):
    """With the SMTP server down the email is retried with backoff, then sent exactly once."""
    smtp.stop()
    ids = run(engine, failed_renewal_events(), policy)
    email_id = next(r.id for r in outbox_rows(engine) if r.channel == "email")
    [down] = deliver_all(engine, [email_id], channels)
    assert down.status == "retry" and down.retry_at is not None and down.retry_at > NOW
    assert deliver_all(engine, [email_id], channels)[0].status == "not_due"
    smtp.start()
    assert deliver_all(engine, [email_id], channels, now=down.retry_at)[0].status == "sent"
    assert deliver_all(engine, ids, channels, now=down.retry_at)[-1].status == "done"
    assert len(smtp.inbox.messages) == 1
    row = next(r for r in outbox_rows(engine) if r.id == email_id)
    assert row.attempts == 2 and row.status == "sent"


def test_incomplete_checkout_gets_the_invoice_page_to_finish_paying(
    engine, channels, policy, smtp, slack
):
    """A first payment stuck for two days gets one email pointing at its hosted invoice."""
    ids = run(engine, incomplete_checkout_events(), policy)
    deliver_all(engine, ids, channels)
    [message] = smtp.inbox.messages
    assert message["Subject"] == "Your Team checkout isn't finished yet"
    text = message.get_body(("plain",)).get_content()
    assert "the Team plan (29.00 USD)" in text and HOSTED in text
