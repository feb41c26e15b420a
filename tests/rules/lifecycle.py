"""The worker's case lifecycle without a database: what a stream of deliveries leaves behind.

Each delivery is folded into the projection (``rules.combine``, as ``worker.projection`` stores
it), the person is evaluated at the event's time on the state *so far*, and
``rules.case_decisions.decide_cases`` opens, updates, reopens or resolves cases, as
``worker.cases.sync_cases`` applies it. Unlike folding everything first, this sees the
intermediate states an out-of-order delivery goes through, and the cases they leave.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rules import BillingEvent, ObjectRecord, build_snapshot, combine, evaluate, records_from_event
from rules.case_decisions import CaseStatus, Decision, ExistingCase, decide_cases
from rules.findings import Finding


@dataclass(frozen=True)
class Case:
    """A case as the lifecycle leaves it: its status, who set it, its latest finding."""

    status: CaseStatus
    resolved_by_system: bool
    finding: Finding


def cases_after(deliveries: Iterable[BillingEvent]) -> dict[str, Case]:
    """Every case (open or resolved) after the deliveries, by key; a redelivered event id is
    skipped, as the store's unique event id makes it."""
    state: dict[tuple[str, str], ObjectRecord] = {}
    cases: dict[str, Case] = {}
    seen: set[str] = set()
    for event in deliveries:
        if event.id in seen:
            continue
        seen.add(event.id)
        for record in records_from_event(event):
            state[record.key] = combine(record, state.get(record.key))
        findings = evaluate(build_snapshot(state.values()), event, event.created)
        existing = [
            ExistingCase(key, case.status, case.resolved_by_system, case.finding)
            for key, case in cases.items()
        ]
        for decision in decide_cases(existing, findings):
            if decision.decision in (Decision.OPEN, Decision.REOPEN) and decision.finding:
                cases[decision.key] = Case(CaseStatus.OPEN, False, decision.finding)
            elif decision.decision is Decision.UPDATE and decision.finding:
                case = cases[decision.key]
                cases[decision.key] = Case(case.status, False, decision.finding)
            elif decision.decision is Decision.AUTO_RESOLVE:
                cases[decision.key] = Case(CaseStatus.RESOLVED, True, cases[decision.key].finding)
    return cases


def open_cases(cases: dict[str, Case]) -> list[tuple[str, str, str]]:
    """(key, classification, severity) of the unresolved cases, sorted."""
    return sorted(
        (key, case.finding.classification, case.finding.severity)
        for key, case in cases.items()
        if case.status is not CaseStatus.RESOLVED
    )


def every_case(cases: dict[str, Case]) -> list[tuple[str, str]]:
    """(key, status) of every case, resolved ones included, sorted."""
    return sorted((key, case.status.value) for key, case in cases.items())
