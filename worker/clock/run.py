"""One clock run: evaluate every person who is due, at the wall-clock time given."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from uuid import uuid4

import structlog
from sqlalchemy import Engine

from rules import RulesConfig
from rules.due import clock_event
from worker import metrics, projection
from worker.clock import lease
from worker.clock.evaluation import evaluate_person
from worker.clock.schedule import due_people, is_due, objects_of
from worker.notifications.planning import NotifyPolicy
from worker.store.db import read_session, write_session

log = structlog.get_logger()

#: People evaluated per query of the due index.
DEFAULT_BATCH_SIZE = 200


@dataclass(frozen=True)
class ClockRun:
    """What one run did; ``ran`` is False when another run held the lease."""

    ran: bool
    evaluated: tuple[str, ...] = ()
    cases_opened: tuple[int, ...] = ()
    cases_updated: tuple[int, ...] = ()
    cases_resolved: tuple[int, ...] = ()
    outbox_ids: tuple[int, ...] = field(default=())


def run_clock(
    engine: Engine,
    now: datetime,
    *,
    config: RulesConfig | None = None,
    notify: NotifyPolicy | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> ClockRun:
    """Evaluate each person whose due time is at or before ``now``, each in its own
    transaction under the person's lock; skip entirely while another run holds the lease."""
    holder = uuid4().hex
    if not lease.acquire(engine, holder):
        metrics.clock_ran(ran=False)
        log.info("clock_run_skipped", reason="another run holds the lease")
        return ClockRun(ran=False)
    try:
        result = _run(engine, holder, now, config or RulesConfig(), notify, batch_size)
    finally:
        lease.release(engine, holder)
    metrics.clock_ran(ran=True)
    log.info(
        "clock_run_finished",
        evaluated=len(result.evaluated),
        opened=result.cases_opened,
        updated=result.cases_updated,
        resolved=result.cases_resolved,
    )
    return result


def _run(
    engine: Engine,
    holder: str,
    now: datetime,
    config: RulesConfig,
    notify: NotifyPolicy | None,
    batch_size: int,
) -> ClockRun:
    at = int(now.timestamp())
    seen: set[str] = set()
    evaluated: list[str] = []
    opened: list[int] = []
    updated: list[int] = []
    resolved: list[int] = []
    outbox: list[int] = []
    while True:
        keys = [k for k in due_people(engine, at, limit=batch_size) if k not in seen]
        if not keys:
            break
        lease.acquire(engine, holder)  # renew: a long run keeps it while it makes progress
        for key in keys:
            seen.add(key)
            objects = objects_of(key)  # a customerless object's row, or a customer's
            with read_session(engine) as session:  # who is this? (read before locking)
                person = projection.find_person(session, [] if objects else [key], [])
            with write_session(engine, lock_keys=person.lock_keys or [key]) as session:
                if not is_due(session, key, at):
                    continue  # an event evaluated them since the query
                person = projection.find_person(session, person.customer_ids, person.emails)
                done = evaluate_person(
                    session,
                    person,
                    clock_event(at),
                    at=at,
                    now=now,
                    config=config,
                    notify=notify,
                    objects=objects,
                )
            metrics.clock_evaluated()
            metrics.cases_changed(done.synced.changes)
            evaluated.append(key)
            opened += done.synced.opened
            updated += done.synced.updated
            resolved += done.synced.resolved
            outbox += done.synced.outbox
    return ClockRun(
        ran=True,
        evaluated=tuple(evaluated),
        cases_opened=tuple(opened),
        cases_updated=tuple(updated),
        cases_resolved=tuple(resolved),
        outbox_ids=tuple(outbox),
    )
