"""fraud_warning: an early fraud warning recommends refunding that one charge, unless disputed."""

from __future__ import annotations

from rules import parse_event


def warnings(findings_by_key):
    return [f for f in findings_by_key.values() if f.kind == "fraud_warning"]


def test_early_fraud_warning_recommends_refunding_the_charge(scenario, findings):
    """radar.early_fraud_warning.created on a charge: refund it in full before a dispute."""
    (finding,) = warnings(findings(scenario("early_fraud_warning")))
    assert finding.key == "fraud_warning:ch_EliOne"
    assert finding.customer_id == "cus_Eli"
    action = finding.recommended_action
    assert (action.type, action.target) == ("refund_charge", "ch_EliOne")
    assert finding.revenue_impact.amount_minor == 9900
    assert "fraud_type:made_with_stolen_card" in finding.signals


def test_warning_on_a_disputed_charge_adds_no_refund(scenario_payloads, event, findings):
    """Once the charge is disputed the dispute's case speaks for it: no fraud-warning refund."""
    events = [
        event("charge.succeeded__card"),
        event("radar.early_fraud_warning.created__card"),
        event("charge.dispute.created__subscription_canceled"),
    ]
    assert warnings(findings(events)) == []


def test_warning_on_a_refunded_or_settled_charge_opens_nothing(event, payload, findings):
    """A refunded charge, or a warning Stripe no longer calls actionable, needs nothing."""
    refunded = [event("charge.refunded__full"), event("radar.early_fraud_warning.created__card")]
    assert warnings(findings(refunded)) == []
    doc = payload("radar.early_fraud_warning.created__card")
    doc["data"]["object"]["actionable"] = False
    assert warnings(findings([event("charge.succeeded__card"), parse_event(doc)])) == []


def test_warning_on_an_unseen_charge_still_opens_a_case(event, findings):
    """The warning alone (its charge never seen) opens a case that says where to look."""
    (finding,) = warnings(findings([event("radar.early_fraud_warning.created__card")]))
    assert finding.customer_id == ""
    assert finding.recommended_action.steps[0].startswith("Find the payment")
