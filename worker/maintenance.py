"""Housekeeping: put back on the queue what a dead worker left unfinished.

Dramatiq's Redis broker requeues a dead worker's messages only during occasional
maintenance; the store knows which events were received but never finished, so billing-ops
re-enqueues those itself. Processing is idempotent, so an extra delivery changes nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import dramatiq
import structlog
from sqlalchemy import Engine, update

from worker.broker import event_message
from worker.notifications import outbox
from worker.notifications.queue import enqueue_notifications
from worker.store import events as event_log
from worker.store.db import write_session
from worker.store.tables import EventRow

log = structlog.get_logger()

#: A pending notification this overdue has most likely lost its queue message.
NOTIFICATION_SWEEP_GRACE_SECONDS = 120


def requeue_events(
    engine: Engine, broker: dramatiq.Broker, event_ids: list[str], now: datetime
) -> int:
    """Enqueue the stored payload of each event again; return how many were enqueued."""
    count = 0
    for event_id in event_ids:
        payload = event_log.load_payload(engine, event_id)
        if payload is None:
            continue
        broker.enqueue(event_message(payload))
        with write_session(engine) as session:
            session.execute(update(EventRow).where(EventRow.id == event_id).values(updated_at=now))
        count += 1
    return count


def requeue_stale_events(
    engine: Engine, broker: dramatiq.Broker, *, older_than: timedelta, now: datetime
) -> int:
    stale = event_log.stale_received(engine, older_than, now)
    count = requeue_events(engine, broker, stale, now)
    if count:
        log.warning("stale_events_requeued", count=count)
    try:  # the supervisor's one sweep also catches up on notifications
        requeue_due_notifications(engine, broker, now=now)
    except Exception as error:  # noqa: BLE001 - never let it stop the event sweep
        log.warning("notification_sweep_failed", error=f"{type(error).__name__}: {error}")
    return count


def requeue_due_notifications(engine: Engine, broker: dramatiq.Broker, *, now: datetime) -> int:
    """Enqueue outbox rows that are due (a lost message, a failed enqueue) or whose claim
    lapsed (a worker died mid-send); delivery claims each row, so extras are no-ops."""
    due = outbox.due(engine, now, grace=timedelta(seconds=NOTIFICATION_SWEEP_GRACE_SECONDS))
    count = enqueue_notifications(broker, due)
    if count:
        log.info("due_notifications_requeued", count=count)
    return count
