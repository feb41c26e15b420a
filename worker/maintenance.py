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
from worker.store import events as event_log
from worker.store.db import write_session
from worker.store.tables import EventRow

log = structlog.get_logger()


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
    return count
