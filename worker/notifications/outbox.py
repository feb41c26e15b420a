"""The outbox table's verbs: insert once, claim with a lease, finish, cancel, find due rows.

Every state change is one conditional UPDATE, so the database decides races: two workers
claiming the same row, or a cancellation racing a send, never both win.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Result, and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from worker.store.db import read_session, write_session
from worker.store.tables import SYSTEM_ACTOR, CaseEntryRow, OutboxRow

PENDING, SENDING, SENT, FAILED, CANCELLED, SKIPPED = (
    "pending",
    "sending",
    "sent",
    "failed",
    "cancelled",
    "skipped",
)
#: Not sent because, when it was due, its case no longer called for it: resolved (by
#: billing-ops as later events cleared its finding, or by an operator), or its finding no
#: longer meets the channel's bar. Distinct from ``cancelled`` (the invoice got paid).
WITHDRAWN = "withdrawn"
FINAL_STATUSES = frozenset({SENT, FAILED, CANCELLED, SKIPPED, WITHDRAWN})
#: Every status, for ``outbox list --status``.
STATUSES = (PENDING, SENDING, SENT, FAILED, CANCELLED, SKIPPED, WITHDRAWN)
SLACK, EMAIL = "slack", "email"
#: A claimed row is the claimer's for this long; longer than any channel's timeouts together.
DEFAULT_LEASE_SECONDS = 120


@dataclass(frozen=True)
class Claim:
    """A row this worker may send: nobody else will until the lease ends."""

    id: int
    token: str
    case_id: int | None  # None: an operator alert, about no case
    channel: str
    reason: str
    invoice_id: str | None
    payload: dict[str, Any]
    attempts: int


def add_timeline(session: Session, case_id: int, now: datetime, action: str, note: str) -> None:
    """A notification outcome in the case timeline, where operators look."""
    session.add(CaseEntryRow(case_id=case_id, at=now, actor=SYSTEM_ACTOR, action=action, note=note))


def insert_once(
    session: Session,
    *,
    dedupe_key: str,
    case_id: int | None,
    channel: str,
    reason: str,
    invoice_id: str | None,
    payload: dict[str, Any],
    status: str,
    now: datetime,
    due_at: datetime | None = None,
) -> int | None:
    """Insert the row unless its dedupe key exists; the new id, or None when it existed.
    ``due_at`` (default ``now``) is when it may first be claimed."""
    values = {
        "dedupe_key": dedupe_key,
        "case_id": case_id,
        "channel": channel,
        "reason": reason,
        "invoice_id": invoice_id,
        "payload": json.dumps(payload, sort_keys=True),
        "status": status,
        "attempts": 0,
        "next_attempt_at": due_at or now,
        "created_at": now,
        "updated_at": now,
        "sent_at": None,
    }
    is_sqlite = session.get_bind().dialect.name == "sqlite"
    dialect_insert = sqlite.insert if is_sqlite else postgresql.insert
    statement = (
        dialect_insert(OutboxRow)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(OutboxRow.id)
    )
    return session.execute(statement).scalar_one_or_none()


def claim(
    engine: Engine, outbox_id: int, now: datetime, lease_seconds: int = DEFAULT_LEASE_SECONDS
) -> Claim | None:
    """Take the row for sending when it is due, or its previous claimer's lease ran out."""
    token = uuid.uuid4().hex
    with write_session(engine) as session:
        result = session.execute(
            update(OutboxRow)
            .where(
                OutboxRow.id == outbox_id,
                or_(
                    and_(OutboxRow.status == PENDING, OutboxRow.next_attempt_at <= now),
                    and_(OutboxRow.status == SENDING, OutboxRow.claimed_until < now),
                ),
            )
            .values(
                status=SENDING,
                claim_token=token,
                claimed_until=now + timedelta(seconds=lease_seconds),
                attempts=OutboxRow.attempts + 1,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        if _rowcount(result) != 1:
            return None
        row = session.get(OutboxRow, outbox_id)
        assert row is not None
        return Claim(
            id=row.id,
            token=token,
            case_id=row.case_id,
            channel=row.channel,
            reason=row.reason,
            invoice_id=row.invoice_id,
            payload=json.loads(row.payload),
            attempts=row.attempts,
        )


def finish(
    engine: Engine,
    claim_: Claim,
    status: str,
    now: datetime,
    *,
    note: str | None = None,
    error: str | None = None,
    retry_at: datetime | None = None,
    also: Callable[[Session], object] | None = None,
) -> bool:
    """Settle a claimed row (or put it back as pending for ``retry_at``); False if the lease
    was lost to another worker, in which case nothing is written. ``also`` writes more in
    the same transaction, only when the row was settled (an operator alert about it)."""
    values: dict[str, Any] = {
        "status": status,
        "claimed_until": None,
        "claim_token": None,
        "updated_at": now,
        "last_error": error,
    }
    if status == SENT:
        values["sent_at"] = now
    if retry_at is not None:
        values["next_attempt_at"] = retry_at
    with write_session(engine) as session:
        result = session.execute(
            update(OutboxRow)
            .where(
                OutboxRow.id == claim_.id,
                OutboxRow.status == SENDING,
                OutboxRow.claim_token == claim_.token,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if _rowcount(result) != 1:
            return False
        if note is not None and claim_.case_id is not None:
            add_timeline(session, claim_.case_id, now, f"notification_{status}", note)
        if also is not None:
            also(session)
        return True


def cancel_pending(
    session: Session, rows: Iterable[OutboxRow], now: datetime, note: str
) -> list[int]:
    """Cancel rows still pending (one claimed for sending is already on its way)."""
    cancelled = []
    for row in rows:
        result = session.execute(
            update(OutboxRow)
            .where(OutboxRow.id == row.id, OutboxRow.status == PENDING)
            .values(status=CANCELLED, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if _rowcount(result) == 1:
            if row.case_id is not None:
                add_timeline(session, row.case_id, now, "notification_cancelled", note)
            cancelled.append(row.id)
    return cancelled


def due(
    engine: Engine, now: datetime, *, grace: timedelta = timedelta(0), limit: int = 500
) -> list[int]:
    """Rows a worker should look at: pending and due for ``grace`` already (their message
    is likely lost), or claimed with a lapsed lease (their worker likely died)."""
    with read_session(engine) as session:
        return list(
            session.scalars(
                select(OutboxRow.id)
                .where(
                    or_(
                        and_(
                            OutboxRow.status == PENDING,
                            OutboxRow.next_attempt_at <= now - grace,
                        ),
                        and_(OutboxRow.status == SENDING, OutboxRow.claimed_until < now),
                    )
                )
                .order_by(OutboxRow.next_attempt_at, OutboxRow.id)
                .limit(limit)
            )
        )


def status_of(engine: Engine, outbox_id: int) -> OutboxRow | None:
    with read_session(engine) as session:
        return session.get(OutboxRow, outbox_id)


def list_rows(engine: Engine, *, status: str | None = None, limit: int = 200) -> list[OutboxRow]:
    with read_session(engine) as session:
        query = select(OutboxRow).order_by(OutboxRow.id.desc()).limit(limit)
        if status:
            query = query.where(OutboxRow.status == status)
        return list(session.scalars(query))


def reset_failed(engine: Engine, outbox_ids: list[int], now: datetime) -> list[int]:
    """Put failed rows back to pending with fresh attempts (an operator fixed the cause)."""
    with write_session(engine) as session:
        rows = session.scalars(
            select(OutboxRow).where(OutboxRow.id.in_(outbox_ids), OutboxRow.status == FAILED)
        ).all()
        for row in rows:
            row.status, row.attempts, row.next_attempt_at, row.updated_at = PENDING, 0, now, now
            if row.case_id is None:
                continue
            add_timeline(
                session,
                row.case_id,
                now,
                "notification_retried",
                f"{row.channel} "
                f"{row.reason.replace('_', ' ')} put back for delivery by an operator",
            )
        return [row.id for row in rows]


def _rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE matched (SQLAlchemy types ``execute`` as a plain ``Result``)."""
    return cast(CursorResult[Any], result).rowcount
