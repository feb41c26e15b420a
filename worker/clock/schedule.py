"""The due-time index: one row per person, keyed by their smallest customer id.

Written in the transaction that evaluated the person (an event, or the clock), read by the
clock through the ``due_at`` index, so a run touches only the people who are due. Objects no
customer owns (a dispute on a charge billing-ops never saw) get a row keyed
``object:<type>:<id>``, so their deadlines come due too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, bindparam, select
from sqlalchemy.orm import Session

from rules.due import Due
from worker.projection import Person
from worker.store.db import read_session
from worker.store.tables import ClockDueRow

#: Key prefix of the row of objects that no customer owns.
OBJECT_KEY_PREFIX = "object:"


def row_keys(person: Person, objects: Iterable[tuple[str, str]] = ()) -> list[str]:
    """The keys the person's rows may have: their customer ids, or (with none) the object's."""
    if person.customer_ids:
        return sorted(person.customer_ids)
    owned_by_nobody = sorted(set(objects))
    if not owned_by_nobody:
        return []
    kind, object_id = owned_by_nobody[0]
    return [f"{OBJECT_KEY_PREFIX}{kind}:{object_id}"]


def objects_of(key: str) -> tuple[tuple[str, str], ...]:
    """The (type, id) a row key names when no customer owns it; empty for a customer's key."""
    if not key.startswith(OBJECT_KEY_PREFIX):
        return ()
    kind, _, object_id = key.removeprefix(OBJECT_KEY_PREFIX).partition(":")
    return ((kind, object_id),)


@dataclass(frozen=True)
class DueRows:
    """The person's due-time rows, read once per evaluation: the last evaluation time before
    the rules run, and the rows ``schedule`` folds into one after."""

    keys: tuple[str, ...]
    rows: tuple[ClockDueRow, ...]

    @property
    def last_evaluated(self) -> int:
        """The latest instant (Unix seconds) the person was evaluated at; 0 when never."""
        return max((row.evaluated_at or 0 for row in self.rows), default=0)


_ROWS = select(ClockDueRow).where(ClockDueRow.customer_id.in_(bindparam("keys", expanding=True)))


def due_rows(session: Session, person: Person, objects: Iterable[tuple[str, str]] = ()) -> DueRows:
    """The rows the person (or, with no customer, the event's object) may have."""
    keys = tuple(row_keys(person, objects))
    if not keys:
        return DueRows((), ())
    return DueRows(keys, tuple(session.scalars(_ROWS, {"keys": list(keys)}).all()))


def schedule(
    session: Session, rows: DueRows, due: Due | None, *, evaluated_at: int, now: datetime
) -> None:
    """Record when the person is next due (``None``: nothing time-driven is pending).

    Rows of the person's other customer records (a person who grew by a shared email) are
    folded into the one row, keeping the latest evaluation time.
    """
    if not rows.keys:
        return
    key = rows.keys[0]
    evaluated_at = max(evaluated_at, rows.last_evaluated)
    row = None
    for existing in rows.rows:
        if existing.customer_id == key:
            row = existing
        else:
            session.delete(existing)
    if row is None:
        row = ClockDueRow(customer_id=key)
        session.add(row)
    row.due_at = due.at if due else None
    row.reason = due.reason.value if due else None
    row.subject = due.subject if due else None
    row.evaluated_at = evaluated_at
    row.updated_at = now


def due_people(engine: Engine, at: int, *, limit: int) -> list[str]:
    """Keys of the people due at or before ``at``, most overdue first (uses the index)."""
    with read_session(engine) as session:
        return list(
            session.scalars(
                select(ClockDueRow.customer_id)
                .where(ClockDueRow.due_at <= at)
                .order_by(ClockDueRow.due_at, ClockDueRow.customer_id)
                .limit(limit)
            )
        )


def is_due(session: Session, key: str, at: int) -> bool:
    """Whether the row is still due (an event may have evaluated the person since)."""
    row = session.get(ClockDueRow, key)
    return row is not None and row.due_at is not None and row.due_at <= at
