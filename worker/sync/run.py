"""``billing-ops sync``: list every object kind the rules read, feed each object into the
projection as an event would, then evaluate every person touched at wall-clock time."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import stripe
import structlog
from sqlalchemy import Engine, select

from rules import (
    BillingEvent,
    ObjectRecord,
    RulesConfig,
    record_from_json,
    record_to_json,
)
from rules.events import occasion_event
from worker import metrics, projection
from worker.clock.evaluation import evaluate_person
from worker.pipeline import Clock, utc_now
from worker.store.db import read_session, write_session
from worker.store.tables import ObjectRow
from worker.stripe_api import fetched_records
from worker.sync import cursors
from worker.sync.client import PacedHTTPClient, missing_permission
from worker.sync.kinds import KINDS, Kind
from worker.sync.unseen import fetch_links, unseen_links

log = structlog.get_logger()

#: Objects per list page (Stripe's maximum) and per committed transaction.
PAGE_SIZE = 100
#: People evaluated per read of the pending list.
EVALUATION_BATCH = 200
#: Back-off before listing again after a 429 that the SDK's retries did not absorb.
RATE_LIMIT_BACKOFF_SECONDS = (1.0, 2.0, 4.0, 8.0, 16.0)
#: The type of the event the evaluation after a sync cites in case timelines.
SYNC_EVENT_TYPE = "billing_ops.sync"
_LIVE = frozenset({"trialing", "active", "past_due", "unpaid", "paused", "incomplete"})

#: Called after each committed page with (kind, objects listed so far for that kind).
Progress = Callable[[str, int], None]


@dataclass
class SyncSummary:
    """What one ``sync`` did, for the one-line summary."""

    objects: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # kind -> why
    people: int = 0
    opened: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    requests: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        kinds = " ".join(f"{kind}={n}" for kind, n in self.objects.items())
        skipped = f"; skipped {', '.join(sorted(self.skipped))}" if self.skipped else ""
        return (
            f"synced {sum(self.objects.values())} objects ({kinds}){skipped}; "
            f"{self.people} people evaluated; cases: {len(self.opened)} opened, "
            f"{len(self.updated)} updated, {len(self.resolved)} resolved; "
            f"{self.requests} requests in {self.seconds:.1f}s"
        )


def run_sync(
    engine: Engine,
    client: stripe.StripeClient,
    http: PacedHTTPClient,
    *,
    kinds: Sequence[Kind] = KINDS,
    since: int,
    clock: Clock = utc_now,
    config: RulesConfig | None = None,
    page_size: int = PAGE_SIZE,
    progress: Progress | None = None,
    warn: Callable[[str], None] | None = None,
) -> SyncSummary:
    """List, project, evaluate. Each kind resumes an interrupted run of its own; a kind the
    key may not read is skipped with one warning. No notification is planned (the state is
    old news to Stripe's own emails; the cases are for operators)."""
    started = time.monotonic()
    summary = SyncSummary()
    ordered = [k for k in KINDS if k in kinds]
    for kind in ordered:
        cursor = cursors.begin(engine, kind.name, since, clock())
        if cursor.resumed:
            log.info("sync_resumed", kind=kind.name, cursor=cursor.cursor, objects=cursor.objects)
        try:
            count = cursor.objects
            if not cursor.listed:
                count = _list_with_backoff(engine, client, http, kind, page_size, clock, progress)
            summary.objects[kind.name] = count
        except stripe.PermissionError as error:
            reason = f"the key lacks {missing_permission(error)}"
            _skip(summary, kind, reason, warn)
        except (stripe.InvalidRequestError, stripe.APIError) as error:
            if error.http_status != 404:  # an emulator without the endpoint answers 404
                raise
            _skip(summary, kind, "the API has no such list endpoint", warn)
    names = [k.name for k in ordered]
    cursors.mark_listed(engine, names, clock())
    _evaluate_pending(engine, summary, clock, config or RulesConfig())
    cursors.finish(engine, names, clock())
    summary.requests = http.sent
    summary.seconds = time.monotonic() - started
    log.info(
        "sync_finished", objects=summary.objects, skipped=summary.skipped, people=summary.people
    )
    return summary


def _skip(
    summary: SyncSummary, kind: Kind, reason: str, warn: Callable[[str], None] | None
) -> None:
    summary.skipped[kind.name] = reason
    log.info("sync_kind_skipped", kind=kind.name, reason=reason)  # the CLI warns on its own
    if warn is not None:
        warn(f"warning: {kind.name} skipped: {reason}")


def _list_with_backoff(
    engine: Engine,
    client: stripe.StripeClient,
    http: PacedHTTPClient,
    kind: Kind,
    page_size: int,
    clock: Clock,
    progress: Progress | None,
) -> int:
    """List the kind from its cursor; after a 429, wait and continue from the last page."""
    for delay in (*RATE_LIMIT_BACKOFF_SECONDS, None):
        cursor = cursors.current(engine, kind.name)  # the last committed page
        try:
            return _list_kind(engine, client, http, kind, cursor, page_size, clock, progress)
        except stripe.RateLimitError:
            if delay is None:
                raise
            log.warning("sync_rate_limited", kind=kind.name, wait_seconds=delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def _list_kind(
    engine: Engine,
    client: stripe.StripeClient,
    http: PacedHTTPClient,
    kind: Kind,
    cursor: cursors.Cursor,
    page_size: int,
    clock: Clock,
    progress: Progress | None,
) -> int:
    count = cursor.objects
    for page, last_id in _pages(engine, client, http, kind, cursor, page_size):
        kept = [(obj, at) for obj, at in page if kind.keep(obj, cursor.since)]
        _apply_page(engine, client, kind, kept, last_id, len(page), clock())
        count += len(page)
        if progress is not None:
            progress(kind.name, count)
    return count


Fetched = list[tuple[Mapping[str, Any], int]]  # (object, second its page was requested)


def _pages(
    engine: Engine,
    client: stripe.StripeClient,
    http: PacedHTTPClient,
    kind: Kind,
    cursor: cursors.Cursor,
    page_size: int,
) -> Iterator[tuple[Fetched, str]]:
    """Pages of (object, fetch time) with the cursor each page ends on, through the SDK's
    auto-pagination. An object is stamped with the second its page was requested: the page
    is the newest of the iterator's requests while its objects are yielded."""
    filters = {**kind.filters(cursor.since), "limit": page_size}
    if kind.per_customer:
        for customer_id in _live_subscribers(engine, after=cursor.cursor):
            listing = kind.lister(client).list(params={**filters, "customer": customer_id})
            yield [(o.to_dict(), http.last_sent) for o in listing.auto_paging_iter()], customer_id
        return
    if cursor.cursor:
        filters["starting_after"] = cursor.cursor
    page: Fetched = []
    for obj in kind.lister(client).list(params=filters).auto_paging_iter():
        page.append((obj.to_dict(), http.last_sent))
        if len(page) == page_size:
            yield page, str(page[-1][0]["id"])
            page = []
    if page:
        yield page, str(page[-1][0]["id"])


def _live_subscribers(engine: Engine, after: str | None) -> list[str]:
    """Customers with a live subscription in the projection, in id order, after ``after``."""
    with read_session(engine) as session:
        rows = session.scalars(
            select(ObjectRow).where(
                ObjectRow.object_type == "subscription", ObjectRow.customer_id.is_not(None)
            )
        )
        ids = {
            str(row.customer_id)
            for row in rows
            if json.loads(row.data)["data"].get("status") in _LIVE
        }
    return sorted(i for i in ids if after is None or i > after)


def _apply_page(
    engine: Engine,
    client: stripe.StripeClient,
    kind: Kind,
    page: Fetched,
    last_id: str,
    listed: int,
    now: datetime,
) -> None:
    """One page into the projection, its customers onto the pending list and the cursor
    forward, in one transaction under the locks of the customers it touches."""
    records = [r for obj, at in page for r in fetched_records(kind.event_type, dict(obj), at)]
    with read_session(engine) as session:
        links = unseen_links(session, records)
    if links:  # a dispute on a charge from before the window: fetch the charge once
        records = [*fetch_links(client, links, max(at for _o, at in page)), *records]
    with read_session(engine) as session:
        customers = {projection.resolve_customer(session, r) for r in records}
    customers |= {r.customer_id for r in records}
    lock_keys = sorted(f"cus:{c}" for c in customers if c)
    with write_session(engine, lock_keys=lock_keys) as session:
        touched: set[str] = set()
        for record in records:
            customer_id = projection.resolve_customer(session, record)
            projection.apply_record(session, _keep_evidence(session, record), customer_id, now)
            if customer_id:
                touched.add(customer_id)
        cursors.add_pending(session, touched, now)
        cursors.advance(session, kind.name, last_id, listed, now)


def _keep_evidence(session: Any, record: ObjectRecord) -> ObjectRecord:
    """A fetched copy identical to the stored one keeps the stored evidence (the event that
    first showed this state): its newer version still protects it from late webhooks, and a
    second sync changes no case."""
    row = session.get(ObjectRow, record.key)
    if row is None or row.partial:
        return record
    stored = record_from_json(json.loads(row.data))
    same = dataclasses.replace(record.data, event_id=stored.data.event_id)
    candidate = dataclasses.replace(record, data=same)
    if record_to_json(candidate)["data"] == json.loads(row.data)["data"]:
        return candidate
    return record


def sync_event(at: int) -> BillingEvent:
    """The occasion the evaluation after a sync cites (no Stripe event caused it)."""
    return occasion_event(SYNC_EVENT_TYPE, at)


def _evaluate_pending(
    engine: Engine, summary: SyncSummary, clock: Clock, config: RulesConfig
) -> None:
    """Evaluate each touched person once, at wall-clock time, each in their own transaction
    under their locks; the pending list empties as they are done (resumable too)."""
    while True:
        batch = cursors.pending(engine, EVALUATION_BATCH)
        if not batch:
            return
        for customer_id in batch:
            with read_session(engine) as session:
                person = projection.find_person(session, [customer_id], [])
            with write_session(engine, lock_keys=person.lock_keys) as session:
                person = projection.find_person(session, person.customer_ids, person.emails)
                now = clock()
                done = evaluate_person(
                    session,
                    person,
                    sync_event(int(now.timestamp())),
                    at=int(now.timestamp()),
                    now=now,
                    config=config,
                    notify=None,
                )
                synced = done.synced
                cursors.clear_pending(session, [customer_id, *person.customer_ids])
            metrics.cases_changed(synced.changes)
            summary.people += 1
            summary.opened += synced.opened
            summary.updated += synced.updated
            summary.resolved += synced.resolved
