"""The event log: each Stripe event once, by id, with its processing status.

The unique event id is the source of truth for dedupe: a redelivered event finds its row and
changes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Engine, Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from rules.errors import MalformedEventError
from rules.events import BillingEvent
from worker.event_validation import (
    MAX_API_VERSION_LENGTH,
    MAX_CREATED,
    MAX_ID_LENGTH,
    MAX_TYPE_LENGTH,
    decode_json,
    storable_text,
)
from worker.pii import scrub_capped
from worker.store.db import is_sqlite, read_session, write_session
from worker.store.tables import EventRow

RECEIVED = "received"
PROCESSED = "processed"
FAILED = "failed"
#: Row id of a delivery whose own id cannot be stored (or that has none): a hash of its body.
UNPARSED_PREFIX = "unparsed_"
#: ``type`` of a stored delivery that has no storable type of its own.
UNKNOWN_TYPE = "unknown"


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


def _envelope(payload: str) -> Mapping[str, Any]:
    try:
        doc = decode_json(payload)
    except MalformedEventError:
        return {}
    return doc if isinstance(doc, Mapping) else {}


def _text_or(value: Any, limit: int, default: str | None) -> str | None:
    return value if isinstance(value, str) and value and storable_text(value, limit) else default


def row_id_for(payload: str) -> str:
    """The event log id of a raw delivery: its event id when storable, else a hash of it."""
    event_id = _text_or(_envelope(payload).get("id"), MAX_ID_LENGTH, None)
    if event_id is not None:
        return event_id
    digest = hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()
    return UNPARSED_PREFIX + digest[:48]


def type_of(payload: str) -> str | None:
    """The ``type`` a raw delivery claims, when it is a storable one."""
    return _text_or(_envelope(payload).get("type"), MAX_TYPE_LENGTH, None)


#: Called in the transaction that marks an event failed for good (once per failure, never on
#: a retry); what it returns (outbox ids of operator alerts) is handed back to the caller.
OnFailed = Callable[[Session, EventRow], Iterable[int]]


def record_unprocessable(engine: Engine, payload: str, error: str, *, now: datetime) -> str:
    """Keep a delivery that cannot be processed as a ``failed`` row (``keep_unprocessable``
    without an alert hook); returns the row id."""
    return keep_unprocessable(engine, payload, error, now=now)[0]


def keep_unprocessable(
    engine: Engine,
    payload: str,
    error: str,
    *,
    now: datetime,
    on_failed: OnFailed | None = None,
) -> tuple[str, tuple[int, ...]]:
    """Keep a delivery that cannot be processed as a ``failed`` row, raw body included, so that
    ``events failed`` lists it whatever went wrong; returns the row id (see ``row_id_for``) and
    what ``on_failed`` returned.

    Only what the columns can hold is copied out of the envelope; the payload itself is kept
    as received (a NUL or lone surrogate, which PostgreSQL refuses, is escaped). A new row
    (not a redelivery of one kept already) is a new failure for ``on_failed``."""
    envelope = _envelope(payload)
    created = envelope.get("created")
    plausible = type(created) is int and 0 <= created <= MAX_CREATED
    row_id = row_id_for(payload)
    values = {
        "id": row_id,
        "type": _text_or(envelope.get("type"), MAX_TYPE_LENGTH, UNKNOWN_TYPE),
        "created": created if plausible else 0,
        "livemode": envelope.get("livemode") is True,
        "api_version": _text_or(envelope.get("api_version"), MAX_API_VERSION_LENGTH, None),
        "payload": payload
        if storable_text(payload)
        else payload.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\x00"),
        "status": FAILED,
        "attempts": 0,
        "received_at": now,
        "updated_at": now,
    }
    insert = sqlite.insert if is_sqlite(engine) else postgresql.insert
    with write_session(engine) as session:
        inserted = session.execute(
            insert(EventRow).values(**values).on_conflict_do_nothing().returning(EventRow.id)
        ).scalar_one_or_none()
        _, alerts = _count_failure(
            session, row_id, error, final=True, now=now, on_failed=on_failed, new=bool(inserted)
        )
    return row_id, alerts


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
        inserted = session.execute(
            insert(EventRow)
            .values(**values)
            .on_conflict_do_nothing()
            .returning(EventRow.status)  # a new row answers at once; a known one is looked up
        ).scalar()
        if inserted is not None:
            return inserted
        return session.scalar(select(EventRow.status).where(EventRow.id == event_id)) or RECEIVED


def insert_received_batch(
    session: Session, events: Sequence[tuple[BillingEvent, str]], *, now: datetime
) -> None:
    """Insert each (event, raw body) once, in the caller's transaction, with one statement
    (an id already stored is left as it is)."""
    if not events:
        return
    rows = {
        event.id: {
            "id": event.id,
            "type": event.type,
            "created": event.created,
            "livemode": event.livemode,
            "api_version": event.api_version,
            "payload": body,
            "status": RECEIVED,
            "attempts": 0,
            "received_at": now,
            "updated_at": now,
        }
        for event, body in events
    }
    insert = sqlite.insert if session.get_bind().dialect.name == "sqlite" else postgresql.insert
    session.execute(insert(EventRow).values(list(rows.values())).on_conflict_do_nothing())


def lock_statuses(session: Session, event_ids: Sequence[str]) -> dict[str, str]:
    """Every stored id's status, its row locked for the caller's transaction (PostgreSQL;
    SQLite's write transaction holds the whole file)."""
    found = session.execute(
        select(EventRow.id, EventRow.status)
        .where(EventRow.id.in_(sorted(set(event_ids))))
        .order_by(EventRow.id)
        .with_for_update()
    )
    return {event_id: status for event_id, status in found}


#: ``mark_processed_many``'s statement, built once: Core, so neither the ORM's bulk-update
#: machinery nor statement construction runs per event (about a seventh of a batch's time).
_EVENTS = cast(Table, EventRow.__table__)
_MARK_PROCESSED = (
    update(_EVENTS)
    .where(_EVENTS.c.id == bindparam("b_id"))
    .values(
        status=PROCESSED,
        attempts=_EVENTS.c.attempts + 1,
        last_error=None,
        customer_id=bindparam("b_customer"),
        processed_at=bindparam("b_at"),
        updated_at=bindparam("b_at"),
    )
)


@dataclass(frozen=True)
class ProcessedMark:
    """One event of a batch done: its id, its first customer, when."""

    event_id: str
    customer_id: str | None
    at: datetime


def mark_processed_many(session: Session, marks: Sequence[ProcessedMark]) -> None:
    """``mark_processed`` for a batch's events at the end of its transaction, in one
    executemany and without loading the rows (the batch path holds no ORM row of them, so
    the session has nothing of the events table to flush or synchronise)."""
    if not marks:
        return
    session.connection().execute(
        _MARK_PROCESSED,
        [{"b_id": m.event_id, "b_customer": m.customer_id, "b_at": m.at} for m in marks],
    )


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
    engine: Engine,
    event_id: str,
    error: str,
    *,
    final: bool,
    now: datetime,
    payload: str | None = None,
    on_failed: OnFailed | None = None,
) -> tuple[int, ...]:
    """Count a failed attempt; ``final`` marks it failed for an operator to retry, and calls
    ``on_failed`` in the same transaction when this is what made it failed; returns what
    ``on_failed`` returned.

    With ``payload``, a final failure of an event that has no row yet (its first insert was
    what failed) is stored as a failed row rather than left to Dramatiq's dead letters."""
    with write_session(engine) as session:
        exists, alerts = _count_failure(
            session, event_id, error, final=final, now=now, on_failed=on_failed
        )
    if final and payload is not None and not exists:
        _, alerts = keep_unprocessable(engine, payload, error, now=now, on_failed=on_failed)
    return alerts


def _count_failure(
    session: Session,
    event_id: str,
    error: str,
    *,
    final: bool,
    now: datetime,
    on_failed: OnFailed | None,
    new: bool = False,
) -> tuple[bool, tuple[int, ...]]:
    """(whether the row exists, what ``on_failed`` returned): one more failed attempt on a
    row not processed, locked for the transaction so that two failures cannot both be the
    one that made it failed."""
    row = session.scalar(select(EventRow).where(EventRow.id == event_id).with_for_update())
    if row is None:
        return False, ()
    if row.status == PROCESSED:
        return True, ()
    newly_failed = final and (new or row.status != FAILED)
    row.attempts += 1
    row.last_error = scrub_capped(error, 2000)
    row.status = FAILED if final else RECEIVED
    row.updated_at = now
    if not (newly_failed and on_failed is not None):
        return True, ()
    session.flush()
    return True, tuple(on_failed(session, row))


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
