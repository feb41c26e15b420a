"""What happens to one event: record it once, project it, evaluate the rules, sync the cases.

Everything after the first insert runs in one write transaction that also marks the event
processed, so a worker killed half-way leaves nothing behind and the retry starts clean:
one event, one set of effects.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from rules import ObjectRecord, RulesConfig, records_from_event
from rules.errors import MalformedEventError
from rules.events import BillingEvent
from rules.records import trusted_event_time
from rules.versions import closest_known_version, is_known_version
from worker import metrics, projection
from worker.clock.evaluation import evaluate_person
from worker.event_validation import short_detail, validate_event
from worker.notifications import operator_alerts
from worker.notifications.planning import NotifyPolicy
from worker.store import events as event_log
from worker.store.db import is_sqlite, read_session, write_session
from worker.store.tables import EventRow
from worker.stripe_api import API_EVIDENCE_PREFIX, ProductNames, SubscriptionRefresher
from worker.sync.unseen import with_unseen

log = structlog.get_logger()

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Outcome:
    """What processing one delivery did."""

    event_id: str
    status: str  # processed | duplicate | malformed (kept as a failed row, ``events failed``)
    findings: tuple[str, ...] = ()
    cases_opened: tuple[int, ...] = ()
    cases_updated: tuple[int, ...] = ()
    cases_resolved: tuple[int, ...] = ()
    outbox_ids: tuple[int, ...] = ()  # pending notifications to enqueue for delivery


def process_event(
    engine: Engine,
    body: str,
    *,
    config: RulesConfig | None = None,
    clock: Clock = utc_now,
    notify: NotifyPolicy | None = None,
    refresher: SubscriptionRefresher | None = None,
    products: ProductNames | None = None,
) -> Outcome:
    """Process one Stripe event (raw JSON) exactly once in its effects.

    ``notify`` says which notification channels are configured (a worker always passes
    it); without it no notification is planned, which is what an in-process replay of old
    events wants. ``refresher`` (with ``STRIPE_API_KEY``) adds the person's subscriptions as
    the Stripe API shows them now, and ``products`` the names of products not learned yet.
    """
    started = time.perf_counter()
    try:
        event = validate_event(body)  # the edge's own check: normally passed already
    except MalformedEventError as error:
        detail = short_detail(error)
        log.error("event_malformed", error=detail)
        row_id, alerts = event_log.keep_unprocessable(
            engine,
            body,
            f"MalformedEventError: {detail}",
            now=clock(),
            on_failed=alert_on_failure(notify, clock()) if notify is not None else None,
        )
        metrics.event_unreadable(event_type_of(body))
        return Outcome(event_id=row_id, status="malformed", outbox_ids=alerts)
    structlog.contextvars.bind_contextvars(event_id=event.id, event_type=event.type)
    status = event_log.record_received(
        engine,
        event_id=event.id,
        event_type=event.type,
        created=event.created,
        livemode=event.livemode,
        api_version=event.api_version,
        payload=body,
        now=clock(),
    )
    if status == event_log.PROCESSED:
        log.info("event_duplicate")
        metrics.event_duplicate(event.type)
        return Outcome(event_id=event.id, status="duplicate")
    event = _trusted(event, clock())

    records = records_from_event(event)
    if refresher is not None:  # a dispute on a charge never seen: fetch it once, before locks
        records = with_unseen(engine, refresher, records, int(clock().timestamp()))
    # Who is this about? Read before locking when the answer is needed before the write
    # transaction: PostgreSQL's per-person locks, the Stripe API calls. SQLite's one write
    # lock needs no names, so there the person is found inside the transaction instead.
    person: projection.Person | None = None
    if not is_sqlite(engine) or refresher is not None or products is not None:
        with read_session(engine) as session:
            person = _person_of(session, records)
    if person is not None and refresher is not None and refresher.wants(event.type):
        records = (
            *records,
            *refresher.records(person.customer_ids, fetched_at=int(clock().timestamp())),
        )
    if person is not None and products is not None:  # network I/O, names the store lacks
        fetched_at = int(clock().timestamp())
        with read_session(engine) as session:
            missing = projection.products_to_fetch(
                session,
                person,
                records,
                now=fetched_at,
                ttl_seconds=products.ttl_seconds,
                api_prefix=API_EVIDENCE_PREFIX,
            )
        if missing:
            records = (*records, *products.records(missing, fetched_at=fetched_at))

    with write_session(engine, lock_keys=person.lock_keys if person else ()) as session:
        row = event_log.claim_for_processing(session, event.id)
        if row is None:
            log.info("event_duplicate")
            metrics.event_duplicate(event.type)
            return Outcome(event_id=event.id, status="duplicate")
        if person is None:
            person = _person_of(session, records)
        outcome = _project_and_evaluate(
            session, event, records, person, config=config, notify=notify, now=clock()
        )
        event_log.mark_processed(row, customer_id=outcome.customer_id, now=outcome.now)
    return outcome.logged(seconds=time.perf_counter() - started)


def _person_of(session: Session, records: tuple[ObjectRecord, ...]) -> projection.Person:
    """The person the event's records are about, as the store knows them now."""
    hints = [projection.resolve_customer(session, record) for record in records]
    return projection.find_person(
        session, [h for h in hints if h], [r.email for r in records if r.email]
    )


@dataclass(frozen=True)
class _Done:
    """One event projected and evaluated, inside the caller's transaction."""

    outcome: Outcome
    customer_id: str | None  # the event's first customer, for the event log
    now: datetime
    event_type: str
    case_changes: tuple[tuple[str, str], ...]  # (kind, change), for the metrics

    def logged(self, seconds: float | None = None) -> Outcome:
        """Said once committed, in the log and the metrics (``seconds``: the event's own
        processing time, when it had a transaction of its own)."""
        o = self.outcome
        metrics.event_processed(self.event_type, seconds=seconds)
        metrics.cases_changed(self.case_changes)
        log.info(
            "event_processed",
            findings=list(o.findings),
            opened=o.cases_opened,
            updated=o.cases_updated,
            resolved=o.cases_resolved,
        )
        return o


def _project_and_evaluate(
    session: Session,
    event: BillingEvent,
    records: tuple[ObjectRecord, ...],
    person: projection.Person,
    *,
    config: RulesConfig | None,
    notify: NotifyPolicy | None,
    now: datetime,
) -> _Done:
    """Store the event's records, widen the person to what they now link, run the rules and
    sync the cases: everything one event does after its row is claimed, in one transaction."""
    customer_ids: list[str] = []
    for record in records:
        customer_id = projection.resolve_customer(session, record)
        projection.apply_record(session, record, customer_id, now)
        if customer_id:
            customer_ids.append(customer_id)
    person = projection.find_person(session, [*person.customer_ids, *customer_ids], person.emails)
    done = evaluate_person(
        session,
        person,
        event,
        at=event.created,  # event time: a replay finds what live delivery found
        now=now,
        config=config or RulesConfig(),
        notify=notify,
        objects=[r.key for r in records],  # a dispute on an unseen charge has no person
    )
    findings, synced = done.findings, done.synced
    _note_api_version(event)
    outcome = Outcome(
        event_id=event.id,
        status="processed",
        findings=tuple(f.key for f in findings),
        cases_opened=synced.opened,
        cases_updated=synced.updated,
        cases_resolved=synced.resolved,
        outbox_ids=synced.outbox,
    )
    primary = next((c for c in customer_ids if c), None)
    return _Done(outcome, primary, now, event.type, synced.changes)


#: Events per transaction in ``process_batch``, and the most advisory locks one may hold
#: (PostgreSQL's shared lock table has ``max_locks_per_transaction`` x connections slots).
BATCH_EVENTS = 200
BATCH_LOCK_KEYS = 256


def process_batch(
    engine: Engine,
    bodies: Iterable[str],
    *,
    config: RulesConfig | None = None,
    clock: Clock = utc_now,
) -> Iterator[Outcome]:
    """Process events in their order, up to ``BATCH_EVENTS`` in one write transaction: what
    an in-process replay runs (no notifications planned, no Stripe API).

    Each event does what ``process_event`` does — its row inserted once (unique id), its
    person found *inside* the transaction (so the events before it in the batch count), its
    records projected, the person evaluated, the row marked processed — but a batch shares
    one transaction, one insert of the event rows and one lookup of their statuses instead
    of three transactions per event. The transaction holds the advisory locks of every
    person in the batch (PostgreSQL; on SQLite ``BEGIN IMMEDIATE`` holds the write lock), so
    workers running beside a replay are still serialised per person. An error rolls the
    whole batch back and is raised: nothing of it is kept, and a rerun redoes it (the
    batches before it are committed, and come back as duplicates).
    """
    batch: list[tuple[BillingEvent, str]] = []
    keys: set[str] = set()
    for body in bodies:
        try:
            event = validate_event(body)
        except MalformedEventError as error:
            yield from _run_batch(engine, batch, keys, config=config, clock=clock)
            batch, keys = [], set()
            detail = short_detail(error)
            log.error("event_malformed", error=detail)
            row_id = event_log.record_unprocessable(  # a replay raises no alert
                engine, body, f"MalformedEventError: {detail}", now=clock()
            )
            metrics.event_unreadable(event_type_of(body))
            yield Outcome(event_id=row_id, status="malformed")
            continue
        event_keys = _lock_keys_hint(event) if not is_sqlite(engine) else set()
        if batch and (len(batch) >= BATCH_EVENTS or len(keys | event_keys) > BATCH_LOCK_KEYS):
            yield from _run_batch(engine, batch, keys, config=config, clock=clock)
            batch, keys = [], set()
        batch.append((event, body))
        keys |= event_keys
    yield from _run_batch(engine, batch, keys, config=config, clock=clock)


def _lock_keys_hint(event: BillingEvent) -> set[str]:
    """The lock keys the event's own records name (customer ids and emails); the person's
    other records are found by ``_batch_lock_keys`` before the transaction."""
    records = records_from_event(event)
    return {f"cus:{r.customer_id}" for r in records if r.customer_id} | {
        f"email:{r.email}" for r in records if r.email
    }


def _batch_lock_keys(engine: Engine, events: list[tuple[BillingEvent, str]]) -> list[str]:
    """Every person the batch is about, as stored now (read before locking, as
    ``process_event`` does)."""
    if is_sqlite(engine):
        return []
    keys: set[str] = set()
    with read_session(engine) as session:
        for event, _body in events:
            keys.update(_person_of(session, records_from_event(event)).lock_keys)
    return sorted(keys)


def _run_batch(
    engine: Engine,
    events: list[tuple[BillingEvent, str]],
    hinted_keys: set[str],
    *,
    config: RulesConfig | None,
    clock: Clock,
) -> Iterator[Outcome]:
    if not events:
        return
    lock_keys = sorted(hinted_keys | set(_batch_lock_keys(engine, events)))
    done: list[tuple[BillingEvent, _Done | Outcome]] = []
    with write_session(engine, lock_keys=lock_keys) as session:
        statuses = event_log.insert_received_batch(session, events, now=clock())
        for event, _body in events:
            structlog.contextvars.bind_contextvars(event_id=event.id, event_type=event.type)
            if statuses.get(event.id) == event_log.PROCESSED:
                log.info("event_duplicate")
                metrics.event_duplicate(event.type)
                done.append((event, Outcome(event_id=event.id, status="duplicate")))
                continue
            event = _trusted(event, clock())
            records = records_from_event(event)
            person = _person_of(session, records)
            result = _project_and_evaluate(
                session, event, records, person, config=config, notify=None, now=clock()
            )
            event_log.mark_processed_by_id(
                session, event.id, customer_id=result.customer_id, now=result.now
            )
            statuses[event.id] = event_log.PROCESSED
            done.append((event, result))
    for event, item in done:  # logged once committed: "processed" means it is in the store
        if isinstance(item, _Done):
            structlog.contextvars.bind_contextvars(event_id=event.id, event_type=event.type)
            yield item.logged()
        else:
            yield item


def _note_api_version(event: BillingEvent) -> None:
    """An event of an API version billing-ops does not know was read with the closest known
    shape (``rules.versions``): said in the log and counted, never dropped."""
    if is_known_version(event.api_version):
        return
    read_as = closest_known_version(event.api_version)
    log.warning("event_api_version_unknown", api_version=event.api_version, read_as=read_as)
    metrics.event_unknown_api_version(read_as)


def _trusted(event: BillingEvent, received: datetime) -> BillingEvent:
    """The event as the order and the rules may believe it: ``created`` no further ahead of
    its receipt than clock skew (``rules.records.trusted_event_time``); said in the log."""
    trusted = trusted_event_time(event, int(received.timestamp()))
    if trusted is not event:
        log.warning("event_created_in_future", created=event.created, trusted=trusted.created)
    return trusted


def alert_on_failure(notify: NotifyPolicy, now: datetime) -> event_log.OnFailed:
    """The hook that raises one operator alert for an event that has just failed for good
    (Slack when configured: ``worker.notifications.operator_alerts``)."""
    configured = notify.configured(operator_alerts.OPERATOR_ALERT)

    def alert(session: Session, row: EventRow) -> tuple[int, ...]:
        return operator_alerts.plan_event_failed(session, row, now, configured=configured)

    return alert


def event_type_of(body: str) -> str | None:
    """The ``type`` a raw body claims, for counting a delivery that could not be processed."""
    return event_log.type_of(body)


def event_id_of(body: str) -> str:
    """The event log id of a raw body, for bookkeeping of bodies that failed (its event id,
    or a hash of the body when it has no storable id)."""
    return event_log.row_id_for(body)
