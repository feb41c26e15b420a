"""Evaluate one person and bring their cases and due time up to date, in the caller's
transaction: the one step an event and a clock tick share."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from rules import BillingEvent, Finding, RulesConfig, evaluate
from rules.due import next_due
from rules.model import Subscription
from worker.actions import canceled_by_billing_ops
from worker.cases import SyncResult, sync_cases
from worker.clock.schedule import due_rows, schedule
from worker.notifications.planning import NotifyPolicy
from worker.projection import Person, load_snapshot


@dataclass(frozen=True)
class Evaluation:
    """What evaluating one person found and changed."""

    at: int  # the instant the rules saw (Unix seconds)
    findings: tuple[Finding, ...]
    synced: SyncResult


def evaluate_person(
    session: Session,
    person: Person,
    event: BillingEvent,
    *,
    at: int,
    now: datetime,
    config: RulesConfig,
    notify: NotifyPolicy | None,
    objects: Iterable[tuple[str, str]] = (),
) -> Evaluation:
    """Run the rules at ``at`` — never earlier than the person's newest event or their last
    evaluation, so a late event cannot undo what the clock already saw — sync the cases, and
    record when time alone will next matter for this person. The rules also get the
    subscriptions billing-ops itself canceled (from its action audit), which Stripe's events
    cannot tell from the customer's own cancellations. ``objects`` (the event's own
    (type, id) keys) join the snapshot even when no customer owns them."""
    objects = tuple(objects)
    snapshot = load_snapshot(session, person, objects)
    snapshot = dataclasses.replace(
        snapshot,
        canceled_by_billing_ops=canceled_by_billing_ops(
            session, (s.id for s in snapshot.subscriptions if _canceled_or_canceling(s))
        ),
    )
    rows = due_rows(session, person, objects)
    at = max(at, snapshot.as_of, rows.last_evaluated)
    findings = evaluate(snapshot, event, at, config)
    synced = sync_cases(session, person, snapshot, findings, event, now, notify=notify)
    due = next_due(snapshot, at, config)
    schedule(session, rows, due, evaluated_at=at, now=now)
    return Evaluation(at=at, findings=findings, synced=synced)


def _canceled_or_canceling(sub: Subscription) -> bool:
    """A subscription whose cancellation someone asked for: only these are looked up in the
    action audit (most people have none, and then the audit is not asked at all)."""
    return sub.status == "canceled" or sub.cancel_at_period_end or sub.cancel_at is not None
