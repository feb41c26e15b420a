"""The event log: each Stripe event once, by id, with its processing status.

The unique event id is the source of truth for dedupe: a redelivered event finds its row and
changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from worker.store.db import is_sqlite, read_session, write_session
from worker.store.tables import EventRow

RECEIVED = "received"
PROCESSED = "processed"
FAILED = "failed"


@dataclass(frozen=True)
class EventSummary:
    """What an operator sees of a stored event (never its payload)."""

    id: str
    type: str
    status: str
    attempts: int
    last_error: str | None
    customer_id: str | None
    received_at: datetime
    updated_at: datetime


def _summary(row: EventRow) -> EventSummary:
    return EventSummary(
        id=row.id,
        type=row.type,
        status=row.status,
        attempts=row.attempts,
        last_error=row.last_error,
        customer_id=row.customer_id,
        received_at=row.received_at,
        updated_at=row.updated_at,
    )


def record_received(
    engine: Engine,
    *,
    event_id: str,
    event_type: str,
    created: int,
    livemode: bool,
    api_version: str | None,
    payload: str,
    now: datetime,
) -> str:
    """Insert the event once; return its status (``received`` for a new or unfinished one)."""
    values = {
        "id": event_id,
        "type": event_type,
        "created": created,
        "livemode": livemode,
        "api_version": api_version,
        "payload": payload,
        "status": RECEIVED,
        "attempts": 0,
        "received_at": now,
        "updated_at": now,
    }
    insert = sqlite.insert if is_sqlite(engine) else postgresql.insert
    with write_session(engine) as session:
        session.execute(insert(EventRow).values(**values).on_conflict_do_nothing())
        return session.scalar(select(EventRow.status).where(EventRow.id == event_id)) or RECEIVED


def claim_for_processing(session: Session, event_id: str) -> EventRow | None:
    """The event row, locked for this transaction, unless it is already processed."""
    row = session.scalar(select(EventRow).where(EventRow.id == event_id).with_for_update())
    if row is None or row.status == PROCESSED:
        return None
    return row


def mark_processed(row: EventRow, *, customer_id: str | None, now: datetime) -> None:
    row.status = PROCESSED
    row.attempts += 1
    row.last_error = None
    row.customer_id = customer_id
    row.processed_at = now
    row.updated_at = now


def record_failure(
    engine: Engine, event_id: str, error: str, *, final: bool, now: datetime
) -> None:
    """Count a failed attempt; ``final`` marks it failed for an operator to retry."""
    with write_session(engine) as session:
        session.execute(
            update(EventRow)
            .where(EventRow.id == event_id, EventRow.status != PROCESSED)
            .values(
                attempts=EventRow.attempts + 1,
                last_error=error[:2000],
                status=FAILED if final else RECEIVED,
                updated_at=now,
            )
        )


def list_events(engine: Engine, status: str, limit: int = 200) -> list[EventSummary]:
    with read_session(engine) as session:
        rows = session.scalars(
            select(EventRow)
            .where(EventRow.status == status)
            .order_by(EventRow.received_at)
            .limit(limit)
        )
        return [_summary(row) for row in rows]


def load_payload(engine: Engine, event_id: str) -> str | None:
    with read_session(engine) as session:
        return session.scalar(select(EventRow.payload).where(EventRow.id == event_id))


def reset_for_retry(engine: Engine, event_ids: list[str], now: datetime) -> list[str]:
    """Put failed events back to ``received``; return the ids that were reset."""
    with write_session(engine) as session:
        rows = session.scalars(
            select(EventRow).where(EventRow.id.in_(event_ids), EventRow.status == FAILED)
        ).all()
        for row in rows:
            row.status = RECEIVED
            row.updated_at = now
        return [row.id for row in rows]


def stale_received(engine: Engine, older_than: timedelta, now: datetime) -> list[str]:
    """Events received but not finished for a while: their worker likely died."""
    with read_session(engine) as session:
        return list(
            session.scalars(
                select(EventRow.id)
                .where(EventRow.status == RECEIVED, EventRow.updated_at < now - older_than)
                .order_by(EventRow.received_at)
                .limit(1000)
            )
        )


def count_by_status(engine: Engine) -> dict[str, int]:
    from sqlalchemy import func

    with read_session(engine) as session:
        rows = session.execute(select(EventRow.status, func.count()).group_by(EventRow.status))
        return {status: count for status, count in rows}
