"""The outbox: one row per dedupe key, one sender per row, nothing sent when unconfigured."""

from __future__ import annotations

import json
import random
import threading
from datetime import timedelta

from werkzeug import Request, Response

from tests.notifications.builders import duplicate_charge_events, failed_renewal_events
from tests.notifications.harness import (
    FAST_RETRY,
    NOW,
    SLACK_PATH,
    deliver_all,
    make_settings,
    outbox_rows,
    run,
    timeline,
)
from worker.broker import NOTIFICATIONS_QUEUE, build_broker
from worker.maintenance import requeue_due_notifications
from worker.notifications import outbox
from worker.notifications.delivery import Channels, deliver
from worker.notifications.planning import NotifyPolicy


def test_same_events_five_times_shuffled_send_one_of_each(engine, channels, policy, smtp, slack):
    """Every event delivered five times in a shuffled order still yields one email, one post."""
    bodies = failed_renewal_events() * 5
    random.Random(5).shuffle(bodies)
    ids = run(engine, bodies, policy)
    deliver_all(engine, ids + outbox.due(engine, NOW), channels)
    assert len(smtp.inbox.messages) == 1
    assert len(slack.log) == 1
    assert sorted((r.channel, r.status) for r in outbox_rows(engine)) == [
        ("email", "sent"),
        ("slack", "sent"),
    ]


def test_two_workers_racing_on_one_row_send_once(engine, channels, policy, slack):
    """Two threads delivering the same row at the same instant produce exactly one post."""

    loser_tried = threading.Event()

    def slow_ok(request: Request) -> Response:
        # The winner is still sending until the loser has tried to claim the row.
        assert loser_tried.wait(timeout=30), "the second worker never tried"
        return Response("ok")

    slack.clear_all_handlers()
    slack.expect_request(SLACK_PATH).respond_with_handler(slow_ok)
    [outbox_id] = run(engine, duplicate_charge_events(), policy)
    barrier = threading.Barrier(2)
    statuses: list[str] = []

    def work() -> None:
        barrier.wait()
        status = deliver(engine, outbox_id, channels=channels, now=NOW).status
        statuses.append(status)
        if status != "sent":
            loser_tried.set()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == ["busy", "sent"]
    assert len(slack.log) == 1


def test_a_dead_claimers_row_is_sent_once_after_its_lease(engine, channels, policy, slack):
    """A row claimed by a worker that died is re-claimed after the lease, and the dead
    worker's late answer changes nothing."""
    [outbox_id] = run(engine, duplicate_charge_events(), policy)
    dead = outbox.claim(engine, outbox_id, NOW, lease_seconds=60)
    assert dead is not None
    assert deliver(engine, outbox_id, channels=channels, now=NOW).status == "busy"
    later = NOW + timedelta(seconds=61)
    assert outbox.due(engine, later) == [outbox_id]
    assert deliver(engine, outbox_id, channels=channels, now=later).status == "sent"
    assert not outbox.finish(engine, dead, outbox.FAILED, later, note="late")
    assert len(slack.log) == 1
    assert [r.status for r in outbox_rows(engine)] == ["sent"]


def test_nothing_configured_sends_nothing_and_says_what_it_would_have_sent(engine, tmp_path):
    """Without Slack or SMTP settings the rows are skipped and the case says what was not sent."""
    policy = NotifyPolicy.from_settings(make_settings(tmp_path))
    assert run(engine, failed_renewal_events(), policy) == []
    assert sorted((r.channel, r.status) for r in outbox_rows(engine)) == [
        ("email", "skipped"),
        ("slack", "skipped"),
    ]
    entries = timeline(engine)
    assert {action for action, _ in entries} == {"notification_skipped"}
    notes = [note for _, note in entries]
    assert any(
        n.startswith("would have sent a Slack alert: New case: Failed renewal") for n in notes
    )
    assert (
        "would have sent a recovery email to j***@example.com for invoice in_1 "
        "(29.00 USD, attempt 1)"
    ) in notes


def test_channel_removed_before_delivery_skips_the_row(engine, tmp_path, policy):
    """A row planned while Slack was configured is skipped if Slack is gone at send time."""
    [outbox_id] = run(engine, duplicate_charge_events(), policy)
    unconfigured = Channels.from_settings(make_settings(tmp_path))
    assert deliver(engine, outbox_id, channels=unconfigured, now=NOW).status == "skipped"
    assert timeline(engine)[-1][0] == "notification_skipped"


def test_transient_failures_stop_after_the_last_attempt(engine, channels, policy, slack):
    """A receiver that keeps failing is given up on after max_attempts, on the case timeline."""
    slack.clear_all_handlers()
    slack.expect_request(SLACK_PATH).respond_with_data("boom", status=503)
    [outbox_id] = run(engine, duplicate_charge_events(), policy)
    now, statuses = NOW, []
    for _ in range(FAST_RETRY.max_attempts):
        result = deliver(engine, outbox_id, channels=channels, now=now, retry=FAST_RETRY)
        statuses.append(result.status)
        now = result.retry_at or now
    assert statuses == ["retry"] * (FAST_RETRY.max_attempts - 1) + ["failed"]
    assert len(slack.log) == FAST_RETRY.max_attempts
    assert "failed after 4 attempts: slack webhook answered 503 boom" in timeline(engine)[-1][1]


def test_sweep_requeues_rows_whose_message_was_lost(engine, policy, redis_url):
    """A pending row overdue past the grace period is put back on the notifications queue."""
    [outbox_id] = run(engine, duplicate_charge_events(), policy)
    broker = build_broker(redis_url, edge=False)
    assert requeue_due_notifications(engine, broker, now=NOW) == 0  # still within the grace
    assert requeue_due_notifications(engine, broker, now=NOW + timedelta(minutes=5)) == 1
    [message_id] = broker.client.lrange(f"dramatiq:{NOTIFICATIONS_QUEUE}", 0, -1)
    message = json.loads(broker.client.hget(f"dramatiq:{NOTIFICATIONS_QUEUE}.msgs", message_id))
    assert (message["queue_name"], message["actor_name"], message["args"]) == (
        NOTIFICATIONS_QUEUE,
        "deliver_notification",
        [outbox_id],
    )
    assert outbox.due(engine, NOW) == [outbox_id]
