"""dispute: critical, respond with evidence, never refund the disputed charge."""

from __future__ import annotations

import pytest

from rules import parse_event

DISPUTE = "dispute_subscription_canceled"


def disputes(findings_by_key):
    return [f for f in findings_by_key.values() if f.kind == "dispute"]


def with_reason(scenario_payloads, reason):
    payloads = scenario_payloads(DISPUTE)
    payloads[-1]["data"]["object"]["reason"] = reason
    return [parse_event(p) for p in payloads]


def test_subscription_canceled_dispute(scenario, findings):
    """A 'subscription_canceled' dispute is missing self-serve; respond, do not refund."""
    (finding,) = disputes(findings(scenario(DISPUTE)))
    assert finding.key == "dispute:dp_Dee"
    assert finding.subjects == ("dp_Dee", "ch_DeeRenew")
    assert finding.customer_id == "cus_Dee"
    assert finding.classification == "missing_self_serve"
    assert finding.severity == "critical"
    action = finding.recommended_action
    assert (action.type, action.target, action.reversible) == (
        "respond_to_dispute",
        "dp_Dee",
        False,
    )
    assert action.steps[0].startswith("Do not refund ch_DeeRenew")
    assert any("cancel sub_Dee" in step for step in action.steps)
    assert finding.revenue_impact.amount_minor == 2900
    assert finding.revenue_impact.mrr_at_risk_minor == 2900
    assert "no_cancel_flow" in finding.product_gaps
    assert finding.auto_clear is True
    assert "evt_DispSc06" in finding.evidence and "evt_DispSc04" in finding.evidence


@pytest.mark.parametrize(
    ("reason", "classification"),
    [
        ("subscription_canceled", "missing_self_serve"),
        ("duplicate", "accidental_duplicate"),
        ("product_not_received", "product_failure"),
        ("product_unacceptable", "product_failure"),
        ("credit_not_processed", "product_failure"),
        ("fraudulent", "unclassified"),
        ("unrecognized", "product_failure"),
        ("general", "unclassified"),
        ("bank_cannot_process", "unclassified"),
    ],
)
def test_reason_mapping(scenario_payloads, findings, reason, classification):
    """Each dispute reason maps to one bucket; unclear ones ask a question."""
    (finding,) = disputes(findings(with_reason(scenario_payloads, reason)))
    assert finding.classification == classification
    assert (finding.question is not None) == (classification == "unclassified")
    assert finding.recommended_action.type == "respond_to_dispute"


def test_credit_not_processed_says_refund_promised(scenario_payloads, findings):
    """credit_not_processed is a trust break: the reasoning says a refund was promised."""
    (finding,) = disputes(findings(with_reason(scenario_payloads, "credit_not_processed")))
    assert "refund was promised, not made" in finding.reasoning


@pytest.mark.parametrize("status", ["won", "lost", "warning_closed", "charge_refunded"])
def test_closed_dispute_clears(scenario_payloads, findings, status):
    """A dispute that is closed (won, lost, ...) no longer holds."""
    payloads = scenario_payloads(DISPUTE)
    payloads[-1]["data"]["object"]["status"] = status
    assert disputes(findings([parse_event(p) for p in payloads])) == []


def test_closed_event_supersedes_created(event, findings):
    """charge.dispute.closed (won) after .created clears the case, in any order."""
    events = [
        event("charge.succeeded__card"),
        event("charge.dispute.created__subscription_canceled"),
        event("charge.dispute.closed__won"),
    ]
    assert disputes(findings(events)) == []
    assert disputes(findings(list(reversed(events)))) == []


def test_dispute_without_known_charge(event, findings):
    """A dispute on an unknown charge still opens, customerless unless one customer is known."""
    dispute = event("charge.dispute.created__duplicate_expanded_charge")
    (alone,) = disputes(findings([dispute]))
    assert alone.customer_id == ""
    assert alone.recommended_action.steps[0].startswith("Find the customer")
    (finding,) = disputes(findings([event("customer.created__current"), dispute]))
    assert finding.customer_id == "cus_Ada"
    assert finding.classification == "accidental_duplicate"


def test_never_recommends_refunding_a_disputed_charge(scenario_name, scenario, findings):
    """No finding in any scenario recommends refunding a charge under a chargeback."""
    found = findings(scenario(scenario_name))
    disputed = {
        f.subjects[1]
        for f in found.values()
        if f.kind == "dispute" and len(f.subjects) > 1 and "inquiry" not in f.signals
    }
    for finding in found.values():
        action = finding.recommended_action
        assert not (action.type == "refund_charge" and action.target in disputed)


def test_inquiry_recommends_a_full_refund(scenario, findings):
    """An inquiry (warning_needs_response) took no money: refunding it in full is the advice."""
    (finding,) = disputes(findings(scenario("dispute_inquiry")))
    action = finding.recommended_action
    assert (action.type, action.target) == ("refund_charge", "ch_IvyOne")
    assert finding.severity == "high"
    assert "inquiry" in finding.signals
    assert not any("already took" in step for step in action.steps)
    assert "no funds" in finding.reasoning


def test_fraudulent_is_not_a_product_failure(scenario, findings):
    """reason=fraudulent asks whether the cardholder knows us instead of blaming the product."""
    (finding,) = disputes(findings(scenario("dispute_inquiry")))
    assert finding.classification == "unclassified"
    assert finding.question is not None and "stolen card" in finding.question


def test_chargeback_that_is_not_refundable_never_recommends_a_refund(scenario_payloads, findings):
    """An inquiry Stripe marks is_charge_refundable=false is answered, not refunded."""
    payloads = scenario_payloads("dispute_inquiry")
    payloads[-1]["data"]["object"]["is_charge_refundable"] = False
    (finding,) = disputes(findings([parse_event(p) for p in payloads]))
    assert finding.recommended_action.type == "respond_to_dispute"
    assert finding.recommended_action.steps[0].startswith("Do not refund ch_IvyOne")


def test_prevented_dispute_is_closed_even_in_the_same_second(event, findings):
    """status=prevented is a closed status that outranks needs_response at the same time."""
    created = event("charge.dispute.created__subscription_canceled")
    prevented = event("charge.dispute.closed__prevented")
    assert prevented.created == created.created and prevented.id < created.id
    events = [event("charge.succeeded__card"), created, prevented]
    assert disputes(findings(events)) == []
