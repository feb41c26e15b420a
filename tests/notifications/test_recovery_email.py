"""Recovery emails for failed renewals: on a dunning cadence, with the link that can fix it."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

from tests.notifications.builders import (
    EMAIL,
    HOSTED,
    T0,
    expired_first_payment_events,
    failed_attempt_event,
    failed_renewal_events,
    invoice_paid_event,
    unpaid_subscription_event,
)
from tests.notifications.harness import NOW, deliver_all, outbox_rows, run, timeline
from tests.support import envelope, subscription
from worker.notifications.delivery import Channels
from worker.notifications.planning import NotifyPolicy
from worker.settings import DunningSettings


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


def test_dunning_emails_after_the_first_failure_then_two_reminders(
    engine, channels, policy, smtp, slack
):
    """Eight failed attempts a day apart send three emails (attempts 1, 4, 7), not eight."""
    ids = run(engine, failed_renewal_events(attempt=1)[:-1], policy)
    for attempt in range(1, 9):
        day = NOW + timedelta(days=attempt - 1)
        ids = run(engine, [failed_attempt_event(attempt)], policy, now=day)
        deliver_all(engine, ids, channels, now=day)
    assert len(smtp.inbox.messages) == 3
    keys = sorted(r.dedupe_key for r in outbox_rows(engine) if r.channel == "email")
    assert keys == [f"case:1:email:recovery_email:in_1:step{n}" for n in (1, 2, 3)]


def test_one_recovery_email_per_customer_per_day(engine, channels, policy, smtp, slack):
    """Two subscriptions of one customer failing the same day send one email, not two."""
    second = subscription("sub_2", "cus_1", created=T0 - 30 * 86_400, product="prod_team")
    events = [
        *failed_renewal_events(),
        envelope("evt_sub2", "customer.subscription.created", second, T0 - 30 * 86_400),
        failed_attempt_event(1, invoice_id="in_2", sub_id="sub_2"),
    ]
    deliver_all(engine, run(engine, events, policy), channels)
    assert len(smtp.inbox.messages) == 1


def test_stripe_own_emails_on_sends_none_and_only_opens_the_case(
    engine, channels, configured, smtp, slack
):
    """STRIPE_FAILED_PAYMENT_EMAILS=on: no recovery email, the case opens and says why."""
    settings = dataclasses.replace(configured, dunning=DunningSettings(stripe_sends_emails=True))
    ids = run(engine, failed_renewal_events(), NotifyPolicy.from_settings(settings))
    deliver_all(engine, ids, channels)
    assert smtp.inbox.messages == []
    assert len(slack.log) == 1
    notes = [note for action, note in timeline(engine) if action == "notification_skipped"]
    assert any("left to Stripe" in note for note in notes)


def test_uncollectible_invoice_keeps_its_pending_email(engine, channels, policy, smtp, slack):
    """An invoice marked uncollectible can still be paid: its pending email is not cancelled."""
    ids = run(engine, failed_renewal_events(), policy)
    uncollectible = failed_attempt_event(
        1, event_type="invoice.marked_uncollectible", status="uncollectible"
    )
    run(engine, [uncollectible], policy)
    deliver_all(engine, ids, channels)
    [message] = smtp.inbox.messages
    assert HOSTED in message.get_body(("plain",)).get_content()
    assert all(action != "notification_cancelled" for action, _ in timeline(engine))


def test_unpaid_subscription_email_asks_to_pay_the_invoice(engine, channels, policy, smtp, slack):
    """Retries over (unpaid): the email sends the invoice page and promises no automatic charge."""
    events = [
        *failed_renewal_events(attempt=1)[:-1],
        unpaid_subscription_event(),
        failed_attempt_event(1, next_payment_attempt=None),
    ]
    deliver_all(engine, run(engine, events, policy), channels)
    [message] = smtp.inbox.messages
    text = message.get_body(("plain",)).get_content()
    assert HOSTED in text and "pay the invoice" in text.lower()
    assert "we'll take the payment" not in text and "try again" not in text


def test_three_d_secure_renewal_links_the_hosted_invoice_not_the_portal(
    engine, configured, policy, smtp, slack, httpserver
):
    """invoice.payment_action_required: authentication happens on the hosted invoice page."""
    settings = dataclasses.replace(
        configured,
        stripe_api_key="sk_test_notifications",
        stripe_api_base=httpserver.url_for("/").rstrip("/"),
    )
    events = [
        *failed_renewal_events(attempt=1)[:-1],
        failed_attempt_event(
            1, event_type="invoice.payment_action_required", next_payment_attempt=None
        ),
    ]
    deliver_all(engine, run(engine, events, policy), Channels.from_settings(settings))
    [message] = smtp.inbox.messages
    text = message.get_body(("plain",)).get_content()
    assert HOSTED in text and "3-D Secure" in text
    assert not [r for r, _ in httpserver.log if r.path == "/v1/billing_portal/sessions"]
    assert timeline(engine)[-1][1].endswith("link: hosted invoice)")


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


def test_expired_first_payment_sends_no_recovery_email(engine, channels, policy, smtp, slack):
    """An incomplete first payment expires after 23 h with its invoice voided: nothing to pay,
    so the case asks for a fresh checkout and no "finish paying" email goes out."""
    deliver_all(engine, run(engine, expired_first_payment_events(), policy), channels)
    assert smtp.inbox.messages == []
    assert [r for r in outbox_rows(engine) if r.channel == "email"] == []
