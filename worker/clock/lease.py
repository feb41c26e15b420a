"""One clock run at a time across every worker: a lease row taken with one conditional UPDATE.

The store is the one thing every process shares (Redis may be a per-machine embedded server),
and the UPDATE is atomic on SQLite and PostgreSQL alike: of two runs racing for a free lease,
exactly one changes the row. A run that dies keeps the lease until it expires.
"""

from __future__ import annotations

import time

from sqlalchemy import Engine, or_, update

from worker.store.db import write_session
from worker.store.tables import ClockLeaseRow

LEASE_NAME = "clock"
#: A run that has not released the lease after this long is presumed dead.
DEFAULT_LEASE_SECONDS = 600


def acquire(engine: Engine, holder: str, *, seconds: int = DEFAULT_LEASE_SECONDS) -> bool:
    """Take the lease for ``holder`` if it is free or expired; True when taken."""
    now = int(time.time())
    with write_session(engine) as session:
        result = session.execute(
            update(ClockLeaseRow)
            .where(
                ClockLeaseRow.name == LEASE_NAME,
                or_(ClockLeaseRow.expires_at <= now, ClockLeaseRow.holder == holder),
            )
            .values(holder=holder, expires_at=now + seconds, runs=ClockLeaseRow.runs + 1)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]


def release(engine: Engine, holder: str) -> None:
    """Give the lease back (only if ``holder`` still has it)."""
    with write_session(engine) as session:
        session.execute(
            update(ClockLeaseRow)
            .where(ClockLeaseRow.name == LEASE_NAME, ClockLeaseRow.holder == holder)
            .values(holder=None, expires_at=0)
        )
