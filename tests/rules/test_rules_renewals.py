"""failed_renewal: a recurring payment failed; send a portal link, let retries run."""

from __future__ import annotations

from rules import evaluate, parse_event
from rules.snapshot import snapshot_of

DAY = 86_400


def renewals(findings_by_key):
    return [f for f in findings_by_key.values() if f.kind == "failed_renewal"]


def test_failed_renewal_sends_portal_link(scenario, findings):
    """A renewal that failed twice is a failed_payment with a reversible portal link."""
    (finding,) = renewals(findings(scenario("failed_renewal")))
    assert finding.key == "failed_renewal:in_FayRenew"
    assert finding.subjects == ("in_FayRenew", "sub_Fay")
    assert finding.classification == "failed_payment"
    action = finding.recommended_action
    assert (action.type, action.target, action.reversible) == ("send_portal_link", "cus_Fay", True)
    assert "after 2 attempt(s)" in finding.reasoning
    assert "2026-02-08" in finding.reasoning  # next_payment_attempt, as a date
    assert finding.revenue_impact.mrr_at_risk_minor == 2900
    assert finding.revenue_impact.amount_minor == 2900
    assert finding.auto_clear is True
    assert "past_due" in finding.signals


def test_current_shape_single_failure(event, findings):
    """invoice.payment_failed (current API, attempt 1) alone is enough to open the case."""
    (finding,) = renewals(findings([event("invoice.payment_failed__current_renewal")]))
    assert finding.customer_id == "cus_Ada"
    assert "after 1 attempt(s)" in finding.reasoning
    assert finding.severity == "medium"
    assert finding.product_gaps == ()


def test_old_api_failed_renewal(scenario, findings):
    """The 2020-08-27 shape (invoice.subscription, invoice.charge) is read the same way."""
    (finding,) = renewals(findings(scenario("failed_renewal_old_api")))
    assert finding.subjects == ("in_OlgaRenew", "sub_Olga")


def test_paid_renewal_clears(scenario, findings):
    """A failed renewal that is later paid holds no finding."""
    assert findings(scenario("failed_renewal_recovered")) == {}


def test_voided_renewal_clears(event, findings):
    """Voiding the renewal invoice clears the finding."""
    events = [event("invoice.payment_failed__current_renewal"), event("invoice.voided__renewal")]
    assert renewals(findings(events)) == []


def test_first_invoice_is_not_a_renewal(payload, findings):
    """A failed subscription_create invoice is not a failed renewal."""
    doc = payload("invoice.payment_failed__current_renewal")
    doc["data"]["object"]["billing_reason"] = "subscription_create"
    assert renewals(findings([parse_event(doc)])) == []


def test_past_due_without_invoice(event, findings):
    """A past_due subscription whose invoice is unknown is still a failed renewal."""
    (finding,) = renewals(findings([event("customer.subscription.updated__past_due")]))
    assert finding.key == "failed_renewal:sub_Cur"
    assert finding.recommended_action.type == "send_portal_link"


def test_prorated_invoice_verifies_contract(payload, findings):
    """A failed proration invoice (subscription_update) starts with the contract check."""
    doc = payload("invoice.payment_failed__current_renewal")
    doc["data"]["object"]["billing_reason"] = "subscription_update"
    (finding,) = renewals(findings([parse_event(doc)]))
    assert finding.verify_contract is True
    assert finding.recommended_action.steps[0].startswith("Verify the contract shape")


def test_no_retry_left_is_high(payload, findings):
    """With no next_payment_attempt Stripe stopped retrying: high severity."""
    doc = payload("invoice.payment_failed__current_renewal")
    doc["data"]["object"].update(next_payment_attempt=None, attempt_count=4)
    (finding,) = renewals(findings([parse_event(doc)]))
    assert finding.severity == "high"
    assert "retries_exhausted" in finding.signals
    assert "no_dunning_emails" in finding.product_gaps


def test_failed_renewal_is_not_time_dependent(scenario):
    """The finding holds whatever now is (it clears on state, not on a clock)."""
    events = scenario("failed_renewal")
    snapshot = snapshot_of(events)
    for now in (0, snapshot.as_of, snapshot.as_of + 90 * DAY):
        keys = [f.key for f in evaluate(snapshot, events[-1], now)]
        assert keys == ["failed_renewal:in_FayRenew"]
