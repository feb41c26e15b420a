"""The health page: backlog and rate from the store, failed events and notifications retried
with the same functions as the CLI, each retry put on the real Redis queue."""

from __future__ import annotations

import re
import time

import redis

from tests.console.test_console_security import csrf_token, signed_in
from tests.support import event_body
from worker.broker import event_message
from worker.intake import encode_envelope, push
from worker.notifications import outbox
from worker.pipeline import utc_now
from worker.store.db import write_session
from worker.store.events import list_events, record_received, record_unprocessable
from worker.store.tables import OutboxRow


def test_the_backlog_counts_events_received_but_not_processed(console_app):
    """Two events waiting show as two, with the oldest one's age."""
    engine = console_app.config["ENGINE"]
    for number in (1, 2):
        record_received(
            engine,
            event_id=f"evt_waiting_{number}",
            event_type="customer.created",
            created=1_764_000_000,
            livemode=False,
            api_version=None,
            payload=event_body(f"evt_waiting_{number}"),
            now=utc_now(),
        )
    page = signed_in(console_app).get("/health").get_data(as_text=True)
    assert '<dd id="events-waiting">2</dd>' in page


def test_queue_depth_and_oldest_age_come_from_redis(console_app, redis_url):
    """Two events on the Redis queue, the oldest enqueued a minute ago: 2, and about 1 min."""
    broker = console_app.config["BROKER"]
    old = event_message(event_body("evt_queued_1"))
    old = old.copy(message_timestamp=old.message_timestamp - 60_000)
    broker.enqueue(old)
    broker.enqueue(event_message(event_body("evt_queued_2")))
    page = signed_in(console_app).get("/health").get_data(as_text=True)
    assert '<dd id="queue-events">2</dd>' in page
    assert re.search(r'<dd id="queue-events-age">1 min \d+ s</dd>', page), page


def test_the_intake_is_shown_with_its_oldest_arrival(console_app, redis_url):
    """A webhook accepted a minute ago and not yet moved onto Dramatiq: intake 1, about 1 min."""
    entry = encode_envelope(
        event_body("evt_intake").encode(), int(time.time() * 1000) - 60_000, None
    )
    push(redis.Redis.from_url(redis_url), entry, "billing-ops:seen:evt_intake", 60)
    page = signed_in(console_app).get("/health").get_data(as_text=True)
    assert '<dd id="queue-intake">1</dd>' in page
    assert re.search(r'<dd id="queue-intake-age">1 min \d+ s</dd>', page), page


def test_a_failed_event_is_retried_onto_the_queue(console_app, redis_url):
    """Retry puts the failed event back to received and its payload on the events queue."""
    engine = console_app.config["ENGINE"]
    event_id = record_unprocessable(engine, event_body("evt_broken"), "boom", now=utc_now())
    client = signed_in(console_app)
    page = client.get("/health").get_data(as_text=True)
    assert event_id in page
    queue = redis.Redis.from_url(redis_url)
    before = queue.hlen("dramatiq:events.msgs")
    response = client.post(
        "/health/events/retry",
        data={"event_id": event_id, "csrf_token": csrf_token(client, "/health")},
    )
    assert response.status_code == 302
    assert [e.id for e in list_events(engine, "failed")] == []
    assert [e.id for e in list_events(engine, "received")] == [event_id]
    assert queue.hlen("dramatiq:events.msgs") == before + 1


def test_a_failed_notification_is_retried_onto_the_queue(console_app, redis_url):
    """Retry puts the failed notification back to pending and on the notifications queue."""
    engine = console_app.config["ENGINE"]
    now = utc_now()
    with write_session(engine) as session:
        row = OutboxRow(
            dedupe_key="test:failed",
            case_id=1,
            channel="slack",
            reason="case_alert",
            payload="{}",
            status="failed",
            attempts=8,
            next_attempt_at=now,
            last_error="slack answered 410 for jane@example.com",
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        outbox_id = row.id
    client = signed_in(console_app)
    page = client.get("/health").get_data(as_text=True)
    assert "j***@example.com" in page and "jane@example.com" not in page
    queue = redis.Redis.from_url(redis_url)
    before = queue.hlen("dramatiq:notifications.msgs")
    client.post(
        "/health/notifications/retry",
        data={"outbox_id": str(outbox_id), "csrf_token": csrf_token(client, "/health")},
    )
    assert outbox.status_of(engine, outbox_id).status == "pending"  # type: ignore[union-attr]
    assert queue.hlen("dramatiq:notifications.msgs") == before + 1
