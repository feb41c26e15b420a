"""What happens to a case, from existing cases and new findings alone (no database)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rules.case_decisions import (
    NEVER_STARTED_NOTE,
    CaseStatus,
    Decision,
    ExistingCase,
    OperatorOutcome,
    decide_cases,
    operator_outcome,
)
from rules.findings import Finding, RecommendedAction, RevenueImpact

FINDING = Finding(
    kind="failed_renewal",
    classification="failed_payment",
    severity="medium",
    customer_id="cus_A",
    subjects=("in_A",),
    evidence=("evt_1",),
    revenue_impact=RevenueImpact("usd", 2900, 2900),
    recommended_action=RecommendedAction("send_portal_link", "cus_A", True, ("Send the link",)),
    reasoning="the renewal failed",
    question=None,
    verify_contract=False,
    product_gaps=(),
    signals=(),
    auto_clear=True,
)


def case(status=CaseStatus.OPEN, *, by_system=False, finding=FINDING) -> ExistingCase:
    return ExistingCase(finding.key, status, by_system, finding)


def decide(existing, findings):
    return [(d.key, d.decision, d.note) for d in decide_cases(existing, findings)]


def test_a_new_finding_opens_a_case_with_its_reasoning():
    """No case for the key: open one, the timeline starts with the reasoning."""
    assert decide([], [FINDING]) == [("failed_renewal:in_A", Decision.OPEN, "the renewal failed")]


def test_the_same_finding_leaves_the_case_alone():
    """A redelivery (identical finding) changes nothing."""
    assert decide([case()], [FINDING]) == [("failed_renewal:in_A", Decision.LEAVE, None)]


def test_a_changed_finding_updates_and_says_what_changed():
    """New evidence and a higher severity are named in the update note."""
    grown = replace(FINDING, evidence=("evt_1", "evt_2"), severity="high")
    ((_, decision, note),) = decide([case(CaseStatus.ACKNOWLEDGED)], [grown])
    assert decision is Decision.UPDATE
    assert note == "new evidence evt_2; severity medium → high"


def test_a_case_billing_ops_resolved_reopens_when_the_problem_is_back():
    """Resolved by billing-ops (the condition cleared) and back again: reopen."""
    again = replace(FINDING, evidence=("evt_1", "evt_9"))
    resolved = case(CaseStatus.RESOLVED, by_system=True)
    assert decide([resolved], [again]) == [
        ("failed_renewal:in_A", Decision.REOPEN, "the problem came back")
    ]


def test_a_case_billing_ops_resolved_reopens_when_the_same_finding_comes_back():
    """The finding went away and came back unchanged (evidence delivered out of order took it
    away for a while, e.g. a cancellation's churn read as "never started"): reopen, not leave."""
    resolved = case(CaseStatus.RESOLVED, by_system=True)
    assert decide([resolved], [FINDING]) == [
        ("failed_renewal:in_A", Decision.REOPEN, "the problem came back")
    ]
    assert decide([case(CaseStatus.RESOLVED)], [FINDING])[0][1] is Decision.LEAVE


def test_an_operator_resolution_stands_until_the_problem_grows():
    """An operator's resolution survives new evidence, not a new subject or a higher severity."""
    resolved = case(CaseStatus.RESOLVED)
    renewal = replace(FINDING, evidence=("evt_1", "evt_9"))
    assert decide([resolved], [renewal])[0][1] is Decision.LEAVE
    assert decide([resolved], [replace(FINDING, subjects=("in_A", "in_B"))])[0][1] is (
        Decision.REOPEN
    )
    assert decide([resolved], [replace(FINDING, severity="critical")])[0][1] is Decision.REOPEN


def test_a_state_finding_that_stopped_holding_is_auto_resolved():
    """An open auto_clear case with no finding any more is resolved by billing-ops."""
    assert decide([case()], []) == [
        ("failed_renewal:in_A", Decision.AUTO_RESOLVE, "the condition no longer holds")
    ]


def test_event_derived_and_already_resolved_cases_are_left_alone():
    """A case that does not clear by itself, or is already resolved, is not touched."""
    event_derived = case(finding=replace(FINDING, auto_clear=False))
    assert decide([event_derived], [])[0][1] is Decision.LEAVE
    assert decide([case(CaseStatus.RESOLVED, by_system=True)], [])[0][1] is Decision.LEAVE


def test_guard_changes_are_named_in_the_update_note():
    """When the guard rewrites a finding, the update note says so."""
    guarded = replace(FINDING, guard_notes=("guard: removed the refund of ch_B: disputed",))
    ((_, _, note),) = decide([case()], [guarded])
    assert note == "guard: removed the refund of ch_B: disputed"


def test_churn_of_a_subscription_that_never_started_is_resolved():
    """A cancellation that arrived before the failed first invoice opened a churn case; once
    the incomplete checkout of that subscription is found, billing-ops resolves the churn
    case (it never started), and leaves churn cases of other subscriptions alone."""
    churn = replace(FINDING, kind="churn_signal", subjects=("sub_A",), auto_clear=False)
    other = replace(churn, subjects=("sub_B",))
    checkout = replace(FINDING, kind="incomplete_checkout", subjects=("sub_A", "in_A"))
    decisions = decide([case(finding=churn), case(finding=other)], [checkout])
    assert ("churn_signal:sub_A", Decision.AUTO_RESOLVE, NEVER_STARTED_NOTE) in decisions
    assert ("churn_signal:sub_B", Decision.LEAVE, None) in decisions


@pytest.mark.parametrize("status", [CaseStatus.ACKNOWLEDGED, CaseStatus.RESOLVED])
def test_an_operator_status_set_twice_changes_nothing_the_second_time(status):
    """A repeated ack or resolve is no change (so no second timeline entry)."""
    assert operator_outcome(status, status) is OperatorOutcome.UNCHANGED


def test_acknowledging_a_resolved_case_is_refused():
    """An ack must not quietly reopen a resolved case."""
    assert operator_outcome(CaseStatus.RESOLVED, CaseStatus.ACKNOWLEDGED) is OperatorOutcome.REFUSED


@pytest.mark.parametrize(
    ("current", "requested"),
    [
        (CaseStatus.OPEN, CaseStatus.ACKNOWLEDGED),
        (CaseStatus.OPEN, CaseStatus.RESOLVED),
        (CaseStatus.ACKNOWLEDGED, CaseStatus.RESOLVED),
    ],
)
def test_an_open_or_acknowledged_case_moves_forward(current, requested):
    """Open → acknowledged → resolved, or open → resolved at once."""
    assert operator_outcome(current, requested) is OperatorOutcome.CHANGED


def test_operators_cannot_set_a_case_open():
    """Opening is billing-ops' own decision (a finding, or a problem that grew)."""
    with pytest.raises(ValueError, match="acknowledge or resolve"):
        operator_outcome(CaseStatus.RESOLVED, CaseStatus.OPEN)
