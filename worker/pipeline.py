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
from worker.intake import Envelope
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
        return _keep_malformed(engine, body, error, notify=notify, now=clock())
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
    # Who is this about? Read before locking when the answer is needed before the write
    # transaction: PostgreSQL's per-person locks, the Stripe API calls. SQLite's one write
    # lock needs no names, so there the person is found inside the transaction instead.
    records, person = _prepared(
        engine,
        event,
        clock=clock,
        refresher=refresher,
        products=products,
        need_person=not is_sqlite(engine),
    )

    with write_session(engine, lock_keys=person.lock_keys if person else ()) as session:
        row = event_log.claim_for_processing(session, event.id)
        if row is None:
            log.info("event_duplicate")
            metrics.event_duplicate(event.type)
            return Outcome(event_id=event.id, status="duplicate")
        outcome = _project_and_evaluate(
            session, event, records, person, config=config, notify=notify, now=clock()
        )
        event_log.mark_processed(row, customer_id=outcome.customer_id, now=outcome.now)
    return outcome.logged(seconds=time.perf_counter() - started)


def _prepared(
    engine: Engine,
    event: BillingEvent,
    *,
    clock: Clock,
    refresher: SubscriptionRefresher | None,
    products: ProductNames | None,
    need_person: bool,
) -> tuple[tuple[ObjectRecord, ...], projection.Person | None]:
    """The event's records with what the Stripe API adds (network I/O, so before any lock),
    and the person they are about as the store knows them now (when ``need_person`` or the
    API is used; None otherwise)."""
    records = records_from_event(event)
    if refresher is not None:  # a dispute on a charge never seen: fetch it once, before locks
        records = with_unseen(engine, refresher, records, int(clock().timestamp()))
    person: projection.Person | None = None
    if need_person or refresher is not None or products is not None:
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
    return records, person


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
    person: projection.Person | None,
    *,
    config: RulesConfig | None,
    notify: NotifyPolicy | None,
    now: datetime,
    known: projection.KnownRows | None = None,
) -> _Done:
    """Store the event's records, widen the person to what they now link, run the rules and
    sync the cases: everything one event does after its row is claimed, in one transaction.
    ``person``: as read before the locks (PostgreSQL's single path), found again once the
    records are stored; None: found here, in the transaction, and found again only when the
    records link someone new (``projection.same_person_after``). ``known``: the stored rows
    a batch read up front (``projection.preload_rows``)."""
    person_is_current = person is None
    if person is None:
        person = _person_of(session, records)
    customer_ids: list[str] = []
    for record in records:
        customer_id = projection.resolve_customer(session, record)
        projection.apply_record(session, record, customer_id, now, known)
        if customer_id:
            customer_ids.append(customer_id)
    if not (person_is_current and projection.same_person_after(person, records, customer_ids)):
        person = projection.find_person(
            session, [*person.customer_ids, *customer_ids], person.emails
        )
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


@dataclass(frozen=True)
class _Queued:
    """One parsed event of a batch, with its raw body and the web request it came in by."""

    event: BillingEvent
    body: str
    request_id: str | None


def process_batch(
    engine: Engine,
    deliveries: Iterable[str | Envelope],
    *,
    config: RulesConfig | None = None,
    clock: Clock = utc_now,
    notify: NotifyPolicy | None = None,
    refresher: SubscriptionRefresher | None = None,
    products: ProductNames | None = None,
) -> Iterator[Outcome]:
    """Process events in their order, up to ``BATCH_EVENTS`` in one write transaction; one
    outcome per delivery, in the same order. An in-process replay passes bodies alone (no
    notifications, no Stripe API); a worker passes the intake's envelopes with ``notify``
    and, with ``STRIPE_API_KEY``, ``refresher`` and ``products``.

    Each event does what ``process_event`` does — its row inserted once (unique id), its
    person found *inside* the transaction (so the events before it in the batch count), its
    records projected, the person evaluated, the row marked processed — but a batch shares
    one insert of the event rows (their own short transaction, so an event taken is on
    record as ``received`` for the sweeper, as with ``process_event``) and one locked
    transaction with one lookup of their statuses, instead of three transactions per event.
    The transaction holds the advisory locks of every person in the batch (PostgreSQL; on
    SQLite ``BEGIN IMMEDIATE`` holds the write lock), so other workers are still serialised
    per person. An error rolls the whole transaction back and is raised: nothing of it is
    kept, and a rerun redoes it (the batches before it are committed, and come back as
    duplicates).
    """
    batch: list[_Queued] = []
    keys: set[str] = set()

    def run(queued: list[_Queued], hinted: set[str]) -> Iterator[Outcome]:
        return _run_batch(
            engine,
            queued,
            hinted,
            config=config,
            clock=clock,
            notify=notify,
            refresher=refresher,
            products=products,
        )

    for delivery in deliveries:
        body, request_id = (
            (delivery, None) if isinstance(delivery, str) else (delivery.body, delivery.request_id)
        )
        try:
            event = validate_event(body)
        except MalformedEventError as error:
            yield from run(batch, keys)
            batch, keys = [], set()
            yield _keep_malformed(engine, body, error, notify=notify, now=clock())
            continue
        event_keys = _lock_keys_hint(event) if not is_sqlite(engine) else set()
        if batch and (len(batch) >= BATCH_EVENTS or len(keys | event_keys) > BATCH_LOCK_KEYS):
            yield from run(batch, keys)
            batch, keys = [], set()
        batch.append(_Queued(event, body, request_id))
        keys |= event_keys
    yield from run(batch, keys)


def _keep_malformed(
    engine: Engine,
    body: str,
    error: MalformedEventError,
    *,
    notify: NotifyPolicy | None,
    now: datetime,
) -> Outcome:
    """A delivery no worker can parse, kept as a failed row (an operator alert when
    ``notify`` is given, as ``process_event`` raises; a replay raises none)."""
    detail = short_detail(error)
    log.error("event_malformed", error=detail)
    row_id, alerts = event_log.keep_unprocessable(
        engine,
        body,
        f"MalformedEventError: {detail}",
        now=now,
        on_failed=alert_on_failure(notify, now) if notify is not None else None,
    )
    metrics.event_unreadable(event_type_of(body))
    return Outcome(event_id=row_id, status="malformed", outbox_ids=alerts)


def _lock_keys_hint(event: BillingEvent) -> set[str]:
    """The lock keys the event's own records name (customer ids and emails); the person's
    other records are found by ``_run_batch`` before the transaction."""
    records = records_from_event(event)
    return {f"cus:{r.customer_id}" for r in records if r.customer_id} | {
        f"email:{r.email}" for r in records if r.email
    }


def _bind(queued: _Queued) -> None:
    """The log context of one event of a batch: its id and type, and its web request's id."""
    event = queued.event
    structlog.contextvars.bind_contextvars(event_id=event.id, event_type=event.type)
    if queued.request_id:
        structlog.contextvars.bind_contextvars(request_id=queued.request_id)
    else:
        structlog.contextvars.unbind_contextvars("request_id")


def _run_batch(
    engine: Engine,
    queued: list[_Queued],
    hinted_keys: set[str],
    *,
    config: RulesConfig | None,
    clock: Clock,
    notify: NotifyPolicy | None,
    refresher: SubscriptionRefresher | None,
    products: ProductNames | None,
) -> Iterator[Outcome]:
    if not queued:
        return
    started = time.perf_counter()
    with write_session(engine) as session:  # on record before any lock: see process_batch
        event_log.insert_received_batch(session, [(q.event, q.body) for q in queued], now=clock())
    # Before locking, as process_event does: the persons (PostgreSQL's locks) and, with the
    # Stripe API, each event's extra records (network I/O).
    lock_keys = set(hinted_keys)
    prepared: list[tuple[BillingEvent, tuple[ObjectRecord, ...]]] = []
    for q in queued:
        event = _trusted(q.event, clock())
        prepared.append((event, records_from_event(event)))
    if not is_sqlite(engine):  # one lookup: find_person of all seeds = union of each one's
        with read_session(engine) as session:
            every = [record for _event, records in prepared for record in records]
            lock_keys.update(_person_of(session, tuple(every)).lock_keys)
    if refresher is not None or products is not None:
        for index, (event, _records) in enumerate(prepared):
            records, person = _prepared(
                engine, event, clock=clock, refresher=refresher, products=products,
                need_person=True,
            )  # fmt: skip
            prepared[index] = (event, records)
            if person is not None and not is_sqlite(engine):
                lock_keys.update(person.lock_keys)
    done: list[tuple[_Queued, _Done | Outcome]] = []
    with write_session(engine, lock_keys=sorted(lock_keys)) as session:
        statuses = event_log.lock_statuses(session, [q.event.id for q in queued])
        marks: list[event_log.ProcessedMark] = []
        known = projection.preload_rows(
            session, [record.key for _event, records in prepared for record in records]
        )
        for q, (event, records) in zip(queued, prepared, strict=True):
            _bind(q)
            if statuses.get(event.id) == event_log.PROCESSED:
                log.info("event_duplicate")
                metrics.event_duplicate(event.type)
                done.append((q, Outcome(event_id=event.id, status="duplicate")))
                continue
            result = _project_and_evaluate(
                session, event, records, None, config=config, notify=notify, now=clock(),
                known=known,
            )  # fmt: skip
            marks.append(event_log.ProcessedMark(event.id, result.customer_id, result.now))
            statuses[event.id] = event_log.PROCESSED
            done.append((q, result))
        event_log.mark_processed_many(session, marks)
    share = (time.perf_counter() - started) / len(queued)
    for q, item in done:  # logged once committed: "processed" means it is in the store
        if isinstance(item, _Done):
            _bind(q)
            yield item.logged(seconds=share)
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
