"""What happens to each case, decided from the existing cases and the new findings alone.

A pure function (no database, no clock): the worker loads the cases that matter, calls
``decide_cases``, and applies the decisions in its transaction. The rules it encodes:

- a finding with no case opens one;
- a finding that differs from its open (or acknowledged) case updates it, and the timeline
  says what changed rather than repeating the reasoning;
- a resolved case comes back when billing-ops resolved it (the condition had cleared) or when
  an operator resolved it and the problem has since grown (a new subject, a higher severity);
  a renewal or a redelivery alone never reopens an operator's resolution;
- an unresolved, state-derived (``auto_clear``) case whose finding no longer holds is
  resolved by billing-ops;
- an unresolved churn case about a subscription an incomplete-checkout finding now covers is
  resolved by billing-ops: the subscription was canceled before its first payment, so it
  never started and was not lost (``rules.checkout.unpaid_first_invoice``; its cancellation
  may have arrived before the failed first invoice that shows it);
- everything else is left alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from rules.findings import SEVERITY_RANK, Finding


class CaseStatus(StrEnum):
    """Where a case stands."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Decision(StrEnum):
    """What to do with one case."""

    OPEN = "opened"
    UPDATE = "updated"
    REOPEN = "reopened"
    AUTO_RESOLVE = "auto_resolved"
    LEAVE = "left_alone"


AUTO_RESOLVE_NOTE = "the condition no longer holds"
NEVER_STARTED_NOTE = "the subscription never started: its first payment never completed"
REOPEN_NOTE = "the problem came back"


@dataclass(frozen=True, slots=True)
class ExistingCase:
    """A stored case as the decision needs it: its status, who set it, its latest finding."""

    key: str
    status: CaseStatus
    resolved_by_system: bool
    finding: Finding


@dataclass(frozen=True, slots=True)
class CaseDecision:
    """One decision: ``finding`` is the new one (None when a case is resolved or left alone
    without one), ``note`` the timeline line that goes with it."""

    key: str
    decision: Decision
    finding: Finding | None
    note: str | None


def decide_cases(
    existing: Iterable[ExistingCase], findings: Sequence[Finding]
) -> tuple[CaseDecision, ...]:
    """One decision per finding (by key) and per existing case without a finding."""
    cases = {case.key: case for case in existing}
    current = {finding.key: finding for finding in findings}
    decisions = [_for_finding(cases.get(key), finding) for key, finding in sorted(current.items())]
    never_started = {f.subjects[0] for f in findings if f.kind == "incomplete_checkout"}
    for key, case in sorted(cases.items()):
        if key in current:
            continue
        if case.status != CaseStatus.RESOLVED and case.finding.auto_clear:
            decisions.append(CaseDecision(key, Decision.AUTO_RESOLVE, None, AUTO_RESOLVE_NOTE))
        elif _churn_of_a_subscription_that_never_started(case, never_started):
            decisions.append(CaseDecision(key, Decision.AUTO_RESOLVE, None, NEVER_STARTED_NOTE))
        else:
            decisions.append(CaseDecision(key, Decision.LEAVE, None, None))
    return tuple(decisions)


def _churn_of_a_subscription_that_never_started(
    case: ExistingCase, never_started: set[str]
) -> bool:
    subjects = case.finding.subjects
    return (
        case.status != CaseStatus.RESOLVED
        and case.finding.kind == "churn_signal"
        and bool(subjects)
        and subjects[0] in never_started
    )


def _for_finding(case: ExistingCase | None, finding: Finding) -> CaseDecision:
    if case is None:
        return CaseDecision(finding.key, Decision.OPEN, finding, finding.reasoning)
    if case.status == CaseStatus.RESOLVED:
        # Before the equality test: a finding billing-ops resolved because it had cleared can
        # come back unchanged (evidence delivered out of order took it away for a while).
        if came_back(case, finding):
            return CaseDecision(finding.key, Decision.REOPEN, finding, REOPEN_NOTE)
        return CaseDecision(finding.key, Decision.LEAVE, finding, None)
    if case.finding == finding:
        return CaseDecision(finding.key, Decision.LEAVE, finding, None)
    return CaseDecision(finding.key, Decision.UPDATE, finding, what_changed(case.finding, finding))


def came_back(case: ExistingCase, finding: Finding) -> bool:
    """Whether a resolved case's problem is back: billing-ops resolved it because it had
    cleared, or an operator resolved it and it has since grown (new subjects, higher
    severity)."""
    if case.resolved_by_system:
        return True
    grew = bool(set(finding.subjects) - set(case.finding.subjects))
    escalated = SEVERITY_RANK.get(finding.severity, 0) > SEVERITY_RANK.get(case.finding.severity, 0)
    return grew or escalated


def what_changed(before: Finding, after: Finding) -> str:
    """A timeline note naming what an update brought, not a repeat of the reasoning."""
    changes = []
    new_evidence = sorted(set(after.evidence) - set(before.evidence))
    if new_evidence:
        changes.append("new evidence " + ", ".join(new_evidence))
    for field in ("classification", "severity"):
        old, new = getattr(before, field), getattr(after, field)
        if old != new:
            changes.append(f"{field} {old} → {new}")
    if set(before.subjects) != set(after.subjects):
        changes.append("subjects now " + ", ".join(after.subjects))
    if after.guard_notes and after.guard_notes != before.guard_notes:
        changes.append("guard: " + "; ".join(n.removeprefix("guard: ") for n in after.guard_notes))
    return "; ".join(changes) or "billing state refreshed"


class OperatorOutcome(StrEnum):
    """What an operator's acknowledge or resolve does to a case."""

    CHANGED = "changed"
    #: The case is already there: nothing changes and the timeline gets no second entry.
    UNCHANGED = "unchanged"
    #: Acknowledging a resolved case would quietly reopen it; a resolved case comes back only
    #: through ``came_back`` (its problem grew), never through an acknowledgement.
    REFUSED = "refused"


#: The statuses an operator sets by hand.
OPERATOR_STATUSES = (CaseStatus.ACKNOWLEDGED, CaseStatus.RESOLVED)


def operator_outcome(current: CaseStatus, requested: CaseStatus) -> OperatorOutcome:
    """Whether an operator's ``requested`` status (acknowledged or resolved) applies."""
    if requested not in OPERATOR_STATUSES:
        raise ValueError(f"operators acknowledge or resolve a case, not {requested!r}")
    if current is requested:
        return OperatorOutcome.UNCHANGED
    if current is CaseStatus.RESOLVED:
        return OperatorOutcome.REFUSED
    return OperatorOutcome.CHANGED
