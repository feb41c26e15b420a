"""Triage cases: one per problem key, opened, updated, reopened and resolved from findings.

A case's key is ``kind:primary-subject`` (Stripe ids are global, so the subject already names
the person). State-derived findings are re-derived on every event of the person: when one
stops holding (the invoice got paid, the duplicate was cancelled) its case is resolved by
billing-ops itself, with the reason in the timeline.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, and_, bindparam, or_, select
from sqlalchemy.orm import Session

from rules.case_decisions import (
    CaseStatus,
    Decision,
    ExistingCase,
    OperatorOutcome,
    decide_cases,
    operator_outcome,
)
from rules.findings import KINDS
from worker import metrics
from worker.case_document import CaseDocument, CustomerView, load_document
from worker.case_queries import CaseQuery, iter_cases
from worker.case_view import case_view
from worker.case_view import iso as iso  # re-exported: callers import it from here
from worker.dashboard import dashboard_links
from worker.errors import CaseNotFoundError, CaseTransitionError
from worker.handoff import SECTIONS, customer_view, finding_plan_name, render_handoff
from worker.lookup import object_type_of
from worker.notifications.planning import CaseChange, NotifyPolicy, plan_notifications
from worker.projection import Person, find_person, load_snapshot
from worker.store.db import read_session, write_session
from worker.store.tables import SYSTEM_ACTOR as SYSTEM_ACTOR  # re-exported
from worker.store.tables import CaseEntryRow, CaseRow, EventRow

if TYPE_CHECKING:
    from rules import BillingEvent, BillingSnapshot, Finding


OPEN, ACKNOWLEDGED, RESOLVED = (s.value for s in CaseStatus)
STATUSES = (OPEN, ACKNOWLEDGED, RESOLVED)


@dataclass(frozen=True)
class SyncResult:
    opened: tuple[int, ...] = ()
    updated: tuple[int, ...] = ()
    resolved: tuple[int, ...] = ()
    outbox: tuple[int, ...] = ()  # new pending notification rows, for the actor to enqueue
    changes: tuple[tuple[str, str], ...] = ()  # (kind, change) of each case touched: metrics


@dataclass(frozen=True)
class CaseEntry:
    at: datetime
    actor: str
    action: str
    note: str | None
    event_id: str | None


def stored_document(row: CaseRow) -> CaseDocument:
    """The typed finding and customer view a case row stores."""
    return load_document(row.finding, row.customer_id)


def _render(row: CaseRow, finding: Finding, snapshot: BillingSnapshot) -> None:
    """The one place a case's finding and handoff are written: both from the billing state as
    it is now, so an updated or resolved case never keeps the BILLING STATE and FOLLOW-UP of
    the moment it opened (the subscription still active, "flagged to be cancelled")."""
    row.finding = CaseDocument(
        finding,
        customer_view_of(finding, snapshot),
        plan_name=finding_plan_name(finding, snapshot),  # for Slack; not in the contract
    ).dumps()
    row.handoff = json.dumps(render_handoff(finding, snapshot))


def case_snapshot(session: Session, row: CaseRow) -> BillingSnapshot:
    """The billing state a case is about, as stored now: its customer's person and its
    subjects (a dispute on a charge no customer owns)."""
    finding = stored_document(row).finding
    person = find_person(session, [row.customer_id] if row.customer_id else [], [])
    objects = [(t, s) for s in finding.subjects if (t := object_type_of(s))]
    return load_snapshot(session, person, objects)


def rerender(session: Session, row: CaseRow) -> None:
    """Re-render a case's handoff from the current billing state (after an operator's status
    change or action, which no event brought)."""
    _render(row, stored_document(row).finding, case_snapshot(session, row))


def _money_columns(finding: Finding) -> dict[str, Any]:
    """The case row's copy of the money at stake, for the case list's index."""
    impact = finding.revenue_impact
    return {"currency": impact.currency_code or "", "at_stake_minor": impact.at_stake_minor}


def _entry(session: Session, case: CaseRow, now: datetime, action: str, **extra: Any) -> None:
    session.add(
        CaseEntryRow(
            case_id=case.id,
            at=now,
            actor=extra.pop("actor", SYSTEM_ACTOR),
            action=action,
            note=extra.pop("note", None),
            event_id=extra.pop("event_id", None),
        )
    )


#: The cases ``sync_cases`` weighs, built once: those of the findings (any status), and the
#: unresolved ones of the person's customers or about an object of the snapshot. Each branch
#: is on an indexed column, so the lookup stays an index search as the cases table grows
#: (SQLite scans the whole table for a nested OR).
_PERSON_CASES = select(CaseRow).where(
    or_(
        CaseRow.key.in_(bindparam("keys", expanding=True)),
        and_(CaseRow.customer_id.in_(bindparam("ids", expanding=True)), CaseRow.status != RESOLVED),
        and_(CaseRow.key.in_(bindparam("subjects", expanding=True)), CaseRow.status != RESOLVED),
    )
)


def sync_cases(
    session: Session,
    person: Person,
    snapshot: BillingSnapshot,
    findings: Sequence[Finding],
    event: BillingEvent,
    now: datetime,
    *,
    notify: NotifyPolicy | None = None,
) -> SyncResult:
    """Apply ``rules.case_decisions.decide_cases`` to the person's cases: open, update or
    reopen a case per finding, resolve cleared state-derived ones, leave the rest alone."""
    changes: list[CaseChange] = []  # for the notification planner, same transaction
    opened: list[int] = []
    updated: list[int] = []
    resolved: list[int] = []
    current = [finding.key for finding in findings]
    # A case about an object with no known customer (a dispute on a charge never seen) is
    # found by its subject: every kind keyed on an object of this snapshot.
    subject_keys = [f"{kind}:{object_id}" for kind in KINDS for object_id in _object_ids(snapshot)]
    params = {"keys": current, "ids": sorted(person.customer_ids), "subjects": subject_keys}
    rows = {row.key: row for row in session.scalars(_PERSON_CASES, params)}
    existing = [
        ExistingCase(
            key=row.key,
            status=CaseStatus(row.status),
            resolved_by_system=row.status_by == SYSTEM_ACTOR,
            finding=stored_document(row).finding,
        )
        for row in rows.values()
    ]
    for decision in decide_cases(existing, findings):
        finding, note = decision.finding, decision.note
        row = rows.get(decision.key)
        if decision.decision is Decision.OPEN and finding is not None:
            row = CaseRow(
                key=decision.key,
                status=OPEN,
                kind=finding.kind,
                classification=finding.classification,
                severity=finding.severity,
                customer_id=finding.customer_id,
                opened_at=now,
                updated_at=now,
                **_money_columns(finding),
            )
            _render(row, finding, snapshot)
            session.add(row)
            session.flush()
            _entry(session, row, now, "opened", note=note, event_id=event.id)
            opened.append(row.id)
            changes.append(CaseChange(row, "opened", event.id))
        elif row is None:
            continue
        elif decision.decision in (Decision.UPDATE, Decision.REOPEN) and finding is not None:
            row.classification = finding.classification
            row.severity = finding.severity
            _render(row, finding, snapshot)
            row.updated_at = now
            money = _money_columns(finding)
            row.currency, row.at_stake_minor = money["currency"], money["at_stake_minor"]
            if decision.decision is Decision.REOPEN:
                row.status, row.resolved_at, row.status_by, row.status_note = OPEN, None, None, None
            _entry(session, row, now, decision.decision.value, note=note, event_id=event.id)
            updated.append(row.id)
            changes.append(CaseChange(row, decision.decision.value, event.id))
        elif decision.decision is Decision.AUTO_RESOLVE:
            _render(row, stored_document(row).finding, snapshot)  # the state that cleared it
            row.status, row.resolved_at, row.updated_at = RESOLVED, now, now
            row.status_by, row.status_note = SYSTEM_ACTOR, note
            _entry(session, row, now, "auto_resolved", note=note, event_id=event.id)
            resolved.append(row.id)
            changes.append(CaseChange(row, "auto_resolved", event.id))
        elif finding is not None and row.status != RESOLVED:
            # Same finding: the customer view (a new name) and the billing state may have moved.
            _render(row, finding, snapshot)
    outbox = plan_notifications(session, changes, snapshot, now, notify)
    return SyncResult(
        tuple(opened),
        tuple(updated),
        tuple(resolved),
        outbox,
        changes=tuple((item.case.kind, item.change) for item in changes),
    )


def _object_ids(snapshot: BillingSnapshot) -> list[str]:
    """Ids of the disputes, fraud warnings and charges in a snapshot (case subjects)."""
    ids = [d.id for d in snapshot.disputes] + [c.id for c in snapshot.charges]
    ids += [w.charge_id for w in snapshot.early_fraud_warnings if w.charge_id]
    return sorted(set(ids))


# --- operator queries and transitions -------------------------------------------------


def case_to_json(
    row: CaseRow,
    entries: Sequence[CaseEntryRow] | None = None,
    api_versions: Mapping[str, str | None] | None = None,
) -> dict[str, Any]:
    """A case in the shape of the interface contract (emails masked, no card data); each
    timeline entry names the API version of its event (``api_versions``: event id -> version)."""
    return case_view(row).as_json(entries, api_versions)


def list_cases(
    engine: Engine, *, status: str | None = None, kind: str | None = None
) -> list[dict[str, Any]]:
    """Every case with this status and kind, newest change first, as contract documents (a
    shorthand over ``worker.case_queries``, the one way cases are listed)."""
    query = CaseQuery(
        statuses=frozenset({CaseStatus(status)}) if status else frozenset(),
        kinds=frozenset({kind}) if kind else frozenset(),
    )
    return [case.as_json() for case in iter_cases(engine, query)]


#: Case ids are 32-bit in PostgreSQL (``SERIAL``): a larger one names no case, and asking the
#: database for it would fail (SQLite fails past 64 bits).
MAX_CASE_ID = 2**31 - 1


def _case_row(session: Session, case_id: int, *, for_update: bool = False) -> CaseRow:
    known = 0 < case_id <= MAX_CASE_ID
    row = session.get(CaseRow, case_id, with_for_update=for_update) if known else None
    if row is None:
        raise CaseNotFoundError(f"no case with id {case_id}")
    return row


def get_case(engine: Engine, case_id: int) -> dict[str, Any]:
    with read_session(engine) as session:
        row = _case_row(session, case_id)
        entries = session.scalars(
            select(CaseEntryRow).where(CaseEntryRow.case_id == case_id).order_by(CaseEntryRow.id)
        ).all()
        event_ids = {e.event_id for e in entries if e.event_id}
        query = select(EventRow.id, EventRow.api_version).where(EventRow.id.in_(event_ids))
        versions = {event_id: version for event_id, version in session.execute(query)}
        doc = case_to_json(row, entries, versions)
        from worker.actions import action_taken_text, audit_of  # imports this module

        doc["actions"] = audit_of(session, case_id)
        doc["handoff"]["action_taken"] = (
            action_taken_text(doc["actions"]) or doc["handoff"]["action_taken"]
        )
        livemode = case_livemode(session, row, entries, doc["evidence"])
        doc["livemode"] = livemode
        doc["dashboard_links"] = dashboard_links(
            [*(doc["handoff"][s] for s in SECTIONS), " ".join(doc["subjects"])], livemode
        )
        return doc


def case_livemode(
    session: Session, row: CaseRow, entries: Sequence[CaseEntryRow], evidence: Sequence[str]
) -> bool:
    """Whether the case is about live-mode objects: the ``livemode`` of the events behind it
    (its timeline's and evidence's), else of its customer's events, else of any event stored
    (an install receives one mode); test mode when nothing is known."""
    ids = list({e.event_id for e in entries if e.event_id} | set(evidence))[:500]
    for query in (
        select(EventRow.livemode).where(EventRow.id.in_(ids)) if ids else None,
        select(EventRow.livemode).where(EventRow.customer_id == row.customer_id),
        select(EventRow.livemode),
    ):
        if query is None:
            continue
        found = session.scalars(query.limit(1)).first()
        if found is not None:
            return bool(found)
    return False


@dataclass(frozen=True)
class StatusChange:
    """An operator's acknowledge or resolve: the case after it, and whether it changed."""

    case: dict[str, Any]
    changed: bool


def set_status(
    engine: Engine, case_id: int, status: str, *, actor: str, note: str | None, now: datetime
) -> dict[str, Any]:
    """``change_status`` for callers that only need the case after it (the API)."""
    return change_status(engine, case_id, status, actor=actor, note=note, now=now).case


def change_status(
    engine: Engine, case_id: int, status: str, *, actor: str, note: str | None, now: datetime
) -> StatusChange:
    """An operator acknowledges or resolves a case; the change lands in its timeline once.

    The one place every caller (CLI, API, console) changes a case's status by hand: a
    repeated acknowledge or resolve changes nothing and adds no timeline entry; acknowledging
    a resolved case is a ``CaseTransitionError`` (``rules.case_decisions.operator_outcome``).
    """
    requested = CaseStatus(status)
    with write_session(engine) as session:
        row = _case_row(session, case_id, for_update=True)
        outcome = operator_outcome(CaseStatus(row.status), requested)
        if outcome is OperatorOutcome.REFUSED:
            raise CaseTransitionError(
                f"case {case_id} is resolved; acknowledging it would reopen it (billing-ops "
                "reopens a resolved case itself when its problem grows)"
            )
        if outcome is OperatorOutcome.CHANGED:
            row.status, row.status_by, row.status_note, row.updated_at = status, actor, note, now
            row.resolved_at = now if requested is CaseStatus.RESOLVED else None
            rerender(session, row)
            _entry(session, row, now, status, actor=actor, note=note)
        kind = row.kind
    if outcome is OperatorOutcome.CHANGED and requested is CaseStatus.RESOLVED:
        metrics.case_resolved_by_operator(kind)
    return StatusChange(case=get_case(engine, case_id), changed=outcome is OperatorOutcome.CHANGED)


def customer_view_of(finding: Finding, snapshot: BillingSnapshot) -> CustomerView:
    """The masked customer view stored with a case (no address, no card data)."""
    view = customer_view(finding, snapshot)
    return CustomerView(id=view["id"], name=view["name"], email_masked=view["email_masked"])
