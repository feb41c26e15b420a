"""Outbox deliveries are counted by channel: sent, given up on, put back for a retry."""

from __future__ import annotations

from tests.metrics import local
from tests.notifications.builders import duplicate_charge_events
from tests.notifications.harness import SLACK_PATH, deliver_all, run


def test_a_posted_alert_counts_as_sent_on_its_channel(engine, channels, policy, slack):
    """One Slack alert delivered: slack's sent counter grows by one, email's does not."""
    slack_sent = local("billing_ops_notifications_sent_total", channel="slack")
    email_sent = local("billing_ops_notifications_sent_total", channel="email")
    [outbox_id] = run(engine, duplicate_charge_events(), policy)
    assert deliver_all(engine, [outbox_id], channels)[0].status == "sent"
    assert local("billing_ops_notifications_sent_total", channel="slack") == slack_sent + 1
    assert local("billing_ops_notifications_sent_total", channel="email") == email_sent


def test_a_transient_failure_counts_as_a_retry_and_a_revoked_hook_as_failed(
    engine, channels, policy, slack
):
    """Slack answers 500, then 404 (hook revoked): one retry, then one failure, nothing sent."""
    retries = local("billing_ops_notification_retries_total", channel="slack")
    failed = local("billing_ops_notifications_failed_total", channel="slack")
    sent = local("billing_ops_notifications_sent_total", channel="slack")
    slack.clear_all_handlers()
    slack.expect_oneshot_request(SLACK_PATH).respond_with_data("internal_error", status=500)
    slack.expect_request(SLACK_PATH).respond_with_data("no_service", status=404)
    [outbox_id] = run(engine, duplicate_charge_events(), policy)
    [first] = deliver_all(engine, [outbox_id], channels)
    assert first.status == "retry" and first.retry_at is not None
    assert local("billing_ops_notification_retries_total", channel="slack") == retries + 1
    assert deliver_all(engine, [outbox_id], channels, now=first.retry_at)[0].status == "failed"
    assert local("billing_ops_notifications_failed_total", channel="slack") == failed + 1
    assert local("billing_ops_notifications_sent_total", channel="slack") == sent
