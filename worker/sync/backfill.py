"""``billing-ops backfill``: the events Stripe still keeps (30 days), oldest first, through the
same pipeline as webhooks. An event already received is the same event (unique id): nothing
happens twice. The cursor is the creation second of the last event processed."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import stripe
import structlog
from sqlalchemy import Engine

from rules import RulesConfig
from worker.pipeline import Clock, process_event, utc_now
from worker.store.db import write_session
from worker.sync import cursors
from worker.sync.client import PacedHTTPClient

log = structlog.get_logger()

KIND = "events"
#: Events listed per page, and processed between two cursor saves.
PAGE_SIZE = 100


@dataclass
class BackfillSummary:
    listed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)  # processed | duplicate | malformed
    requests: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        outcomes = ", ".join(f"{n} {status}" for status, n in sorted(self.outcomes.items()))
        return (
            f"backfilled {self.listed} events ({outcomes or 'none'}); "
            f"{self.requests} requests in {self.seconds:.1f}s"
        )


def run_backfill(
    engine: Engine,
    client: stripe.StripeClient,
    http: PacedHTTPClient,
    *,
    since: int,
    clock: Clock = utc_now,
    config: RulesConfig | None = None,
    page_size: int = PAGE_SIZE,
    progress: Callable[[str, int], None] | None = None,
) -> BackfillSummary:
    """List events created since ``since`` (or since the interrupted run's cursor), then
    process them oldest first. Like ``replay``, no notification is planned for old events."""
    started = time.monotonic()
    summary = BackfillSummary()
    cursor = cursors.begin(engine, KIND, since, clock())
    start = int(cursor.cursor) if cursor.cursor else cursor.since
    listing = client.v1.events.list(params={"created": {"gte": start}, "limit": page_size})
    events: list[dict[str, Any]] = []
    for listed in listing.auto_paging_iter():
        events.append(listed.to_dict())
        if progress is not None and len(events) % page_size == 0:
            progress("listing events", len(events))
    # Stripe lists newest first; a stable sort on the reversed list keeps Stripe's own order
    # within one second.
    events = sorted(reversed(events), key=lambda e: int(e.get("created") or 0))
    summary.listed = len(events)
    for index, event in enumerate(events, start=1):
        outcome = process_event(engine, json.dumps(event), config=config, clock=clock)
        summary.outcomes[outcome.status] += 1
        if index % page_size == 0 or index == len(events):
            with write_session(engine) as session:
                cursors.advance(session, KIND, str(event["created"]), page_size, clock())
            if progress is not None:
                progress("processing events", index)
    cursors.finish(engine, [KIND], clock())
    summary.requests = http.sent
    summary.seconds = time.monotonic() - started
    log.info("backfill_finished", listed=summary.listed, outcomes=dict(summary.outcomes))
    return summary
