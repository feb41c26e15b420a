"""Operator alerts: a failed event and a dead notification each raise one Slack alert, once
per failure — never on a retry — through the notification channel registry."""

from __future__ import annotations

import dataclasses
import json

import dramatiq
import pytest
from sqlalchemy import text

from tests.metrics import local
from tests.notifications.builders import EMAIL, duplicate_charge_events, failed_renewal_events
from tests.notifications.harness import SLACK_PATH, deliver_all, outbox_rows, run
from tests.serving import wait_for
from tests.support import event_body
from worker.actors import MAX_EVENT_RETRIES, setup
from worker.broker import event_message
from worker.notifications.delivery import Channels
from worker.notifications.operator_alerts import OPERATOR_ALERT
from worker.notifications.planning import NotifyPolicy
from worker.pipeline import alert_on_failure, process_event, utc_now
from worker.store import events as event_log

REFUSED = "550 5.1.1 mailbox unavailable"


def _posts(slack) -> list[dict]:
    return [json.loads(request.get_data()) for request, _ in slack.log]


def _alerts(engine) -> list:
    return [row for row in outbox_rows(engine) if row.channel == OPERATOR_ALERT]


@pytest.fixture
def worker_runtime(configured, redis_url, database_url):
    """A real Dramatiq worker on real Redis and the test's store, Slack pointed at the local
    receiver."""
    rt = setup(dataclasses.replace(configured, redis_url=redis_url, database_url=database_url))
    worker = dramatiq.Worker(rt.broker, worker_threads=1, worker_timeout=100)
    worker.start()
    yield rt
    worker.stop()
    rt.engine.dispose()


def _deliver(rt, body: str) -> None:
    """Enqueue ``body`` as the edge does, with Dramatiq's backoff shortened to milliseconds
    so that its own retries run within the test."""
    message = event_message(body)
    rt.broker.enqueue(
        message.copy(options={**message.options, "min_backoff": 10, "max_backoff": 50})
    )


def _event(rt, event_id: str):
    [summary] = [e for e in event_log.list_events(rt.engine, event_log.FAILED) if e.id == event_id]
    return summary


def test_an_event_that_fails_every_retry_raises_one_slack_alert(worker_runtime, slack):
    """The store breaks (a table gone), so an event fails on every attempt: Dramatiq's retries
    raise nothing, the last failure one alert naming the event, its error and the command that
    retries it; after an operator's retry fails again, that new failure raises one more."""
    rt = worker_runtime
    with rt.engine.begin() as connection:
        connection.execute(text("DROP TABLE clock_due"))
    _deliver(rt, event_body("evt_doomed", "customer.created"))
    wait_for(lambda: event_log.count_by_status(rt.engine).get("failed") == 1, 60, "failed")
    assert _event(rt, "evt_doomed").attempts == MAX_EVENT_RETRIES + 1
    wait_for(lambda: len(slack.log) == 1, 30, "the alert posted")
    # the post lands before the outbox row says so: wait for the row, not only the post
    wait_for(lambda: [a.status for a in _alerts(rt.engine)] == ["sent"], 30, "alert recorded")
    [post] = _posts(slack)
    assert "evt_doomed" in post["text"] and "customer.created" in post["text"]
    assert f"failed after {MAX_EVENT_RETRIES + 1} attempt(s)" in post["text"]
    assert "clock_due" in post["text"]  # the error says what broke
    assert "billing-ops events retry evt_doomed" in json.dumps(post["blocks"])
    [alert] = _alerts(rt.engine)
    assert (alert.case_id, alert.reason, alert.status) == (None, "event_failed", "sent")

    assert event_log.reset_for_retry(rt.engine, ["evt_doomed"], utc_now()) == ["evt_doomed"]
    _deliver(rt, event_body("evt_doomed", "customer.created"))
    wait_for(lambda: len(slack.log) == 2, 60, "the second failure's alert posted")
    wait_for(
        lambda: [a.status for a in _alerts(rt.engine)] == ["sent", "sent"], 30, "alerts recorded"
    )
    assert _event(rt, "evt_doomed").attempts == 2 * (MAX_EVENT_RETRIES + 1)


def test_a_failed_event_delivered_again_raises_nothing_new(engine, configured):
    """An event already failed for good fails once more (a redelivery): no second alert."""
    policy = NotifyPolicy.from_settings(configured)
    body = event_body("evt_twice", "customer.created")
    event_log.record_received(engine, event_id="evt_twice", event_type="customer.created",
                              created=1, livemode=False, api_version=None, payload=body,
                              now=utc_now())  # fmt: skip
    hook = alert_on_failure(policy, utc_now())
    first = event_log.record_failure(engine, "evt_twice", "boom", final=True, now=utc_now(),
                                     on_failed=hook)  # fmt: skip
    again = event_log.record_failure(engine, "evt_twice", "boom", final=True, now=utc_now(),
                                     on_failed=hook)  # fmt: skip
    assert len(first) == 1 and again == ()
    assert len(_alerts(engine)) == 1


def test_a_notification_that_gives_up_raises_one_alert(engine, channels, policy, smtp, slack):
    """The recovery email's address is refused (permanent): that notification fails, and one
    operator alert about it goes to Slack, naming the row, its case and the retry command;
    delivering the failed row again raises nothing more."""
    smtp.inbox.refuse[EMAIL] = REFUSED
    ids = run(engine, failed_renewal_events(), policy)
    results = {r.status: r for r in deliver_all(engine, ids, channels)}
    assert set(results) == {"sent", "failed"}  # the case's Slack alert, the email
    failed = results["failed"]
    [alert_id] = failed.alerts
    assert deliver_all(engine, [alert_id], channels)[0].status == "sent"
    alert_post = _posts(slack)[-1]
    assert (
        f"Notification #{failed.outbox_id} (email recovery_email) of case #1"
        in (alert_post["text"])
    )
    assert "550" in alert_post["text"] and EMAIL not in json.dumps(alert_post)
    assert f"billing-ops outbox retry {failed.outbox_id}" in json.dumps(alert_post["blocks"])
    assert deliver_all(engine, [failed.outbox_id], channels)[0].status == "done"
    assert [a.id for a in _alerts(engine)] == [alert_id]
    assert len(slack.log) == 2


def test_an_operator_alert_that_gives_up_raises_no_alert(engine, channels, policy, slack):
    """Slack's hook is revoked: the case alert fails, its operator alert fails too, and that
    failure stops there (no alert about an alert)."""
    slack.clear_all_handlers()
    slack.expect_request(SLACK_PATH).respond_with_data("no_service", status=404)
    [case_alert] = run(engine, duplicate_charge_events(), policy)
    [failed] = deliver_all(engine, [case_alert], channels)
    [alert_id] = failed.alerts
    [alert_failed] = deliver_all(engine, [alert_id], channels)
    assert (alert_failed.status, alert_failed.alerts) == ("failed", ())
    assert len(_alerts(engine)) == 1 and len(slack.log) == 2


def test_without_slack_the_alert_is_kept_skipped(engine, tmp_path, smtp):
    """No Slack configured: the dead notification's alert is written skipped (`outbox list`
    shows it) and nothing is queued to send."""
    from tests.notifications.harness import make_settings

    settings = make_settings(tmp_path, smtp_url=smtp.url, email_from="Acme <billing@acme.test>")
    smtp.inbox.refuse[EMAIL] = REFUSED
    ids = run(engine, failed_renewal_events(), NotifyPolicy.from_settings(settings))
    [failed] = deliver_all(engine, ids, Channels.from_settings(settings))
    assert (failed.status, failed.alerts) == ("failed", ())
    [alert] = _alerts(engine)
    assert (alert.reason, alert.status) == ("notification_dead", "skipped")


def test_operator_alerts_are_counted_on_their_channel(engine, channels, policy, smtp, slack):
    """A delivered operator alert counts as sent on the operator_alert channel."""
    before = local("billing_ops_notifications_sent_total", channel=OPERATOR_ALERT)
    smtp.inbox.refuse[EMAIL] = REFUSED
    results = deliver_all(engine, run(engine, failed_renewal_events(), policy), channels)
    [alert_id] = [i for r in results for i in r.alerts]
    deliver_all(engine, [alert_id], channels)
    assert local("billing_ops_notifications_sent_total", channel=OPERATOR_ALERT) == before + 1


def test_an_unreadable_delivery_raises_one_alert(engine, configured):
    """A worker's delivery that is not an event is kept failed at once with one alert; the
    same body delivered again is the same failure and raises none."""
    policy = NotifyPolicy.from_settings(configured)
    first = process_event(engine, "not json at all", notify=policy)
    assert first.status == "malformed" and len(first.outbox_ids) == 1
    assert process_event(engine, "not json at all", notify=policy).outbox_ids == ()
    [alert] = _alerts(engine)
    assert (alert.id, alert.reason, alert.status) == (
        first.outbox_ids[0],
        "event_failed",
        "pending",
    )
