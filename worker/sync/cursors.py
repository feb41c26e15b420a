"""Where a sync or a backfill stands, in the store: one cursor row per object kind, and the
customers touched but not yet evaluated. Each page of objects and its cursor advance commit
in one transaction, so an interrupted run resumes exactly after its last committed page."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from worker.store.db import read_session, write_session
from worker.store.tables import SyncCursorRow, SyncPendingRow


@dataclass(frozen=True)
class Cursor:
    kind: str
    since: int
    cursor: str | None
    listed: bool
    objects: int
    resumed: bool


def begin(engine: Engine, kind: str, since: int, now: datetime) -> Cursor:
    """The kind's unfinished run as it stood (an interrupted sync continues with its own
    window), or a new run from the start with window ``since``."""
    with write_session(engine) as session:
        row = session.get(SyncCursorRow, kind)
        resumed = row is not None and row.finished_at is None
        if row is None:
            row = SyncCursorRow(kind=kind)
            session.add(row)
        if not resumed:
            row.since, row.cursor, row.listed, row.objects = since, None, False, 0
            row.started_at, row.finished_at = now, None
        row.updated_at = now
        return Cursor(kind, row.since, row.cursor, row.listed, row.objects, resumed)


def current(engine: Engine, kind: str) -> Cursor:
    """The kind's cursor as last committed (after ``begin``)."""
    with read_session(engine) as session:
        row = session.get(SyncCursorRow, kind)
        if row is None:
            raise LookupError(f"no sync cursor for {kind}")
        return Cursor(kind, row.since, row.cursor, row.listed, row.objects, resumed=True)


def advance(session: Session, kind: str, cursor: str, count: int, now: datetime) -> None:
    """Record a committed page: call inside the transaction that applied it."""
    row = session.get(SyncCursorRow, kind)
    if row is None:
        raise LookupError(f"no sync cursor for {kind}")
    row.cursor, row.objects, row.updated_at = cursor, row.objects + count, now


def mark_listed(engine: Engine, kinds: Iterable[str], now: datetime) -> None:
    """Every page of these kinds is applied (a rerun will not list them again)."""
    with write_session(engine) as session:
        for row in session.scalars(select(SyncCursorRow).where(SyncCursorRow.kind.in_(kinds))):
            row.listed, row.updated_at = True, now


def finish(engine: Engine, kinds: Iterable[str], now: datetime) -> None:
    """The run is complete: the next one starts from scratch."""
    with write_session(engine) as session:
        for row in session.scalars(select(SyncCursorRow).where(SyncCursorRow.kind.in_(kinds))):
            row.finished_at, row.updated_at = now, now


def add_pending(session: Session, customer_ids: Iterable[str], now: datetime) -> None:
    """Remember customers to evaluate once listing is done (same transaction as their page)."""
    dialect_insert = (
        sqlite.insert if session.get_bind().dialect.name == "sqlite" else postgresql.insert
    )
    for customer_id in sorted(set(customer_ids)):
        session.execute(
            dialect_insert(SyncPendingRow)
            .values(customer_id=customer_id, added_at=now)
            .on_conflict_do_nothing(index_elements=["customer_id"])
        )


def pending(engine: Engine, limit: int) -> list[str]:
    with read_session(engine) as session:
        return list(
            session.scalars(
                select(SyncPendingRow.customer_id).order_by(SyncPendingRow.customer_id).limit(limit)
            )
        )


def clear_pending(session: Session, customer_ids: Iterable[str]) -> None:
    session.execute(
        delete(SyncPendingRow).where(SyncPendingRow.customer_id.in_(list(customer_ids)))
    )
