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
    assert "after 2 failed attempt(s)" in finding.reasoning
    assert "2026-02-08" in finding.reasoning  # next_payment_attempt, as a date
    assert finding.revenue_impact.mrr_at_risk_minor == 2900
    assert finding.revenue_impact.amount_minor == 2900
    assert finding.auto_clear is True
    assert "past_due" in finding.signals


def test_current_shape_single_failure(event, findings):
    """invoice.payment_failed (current API, attempt 1) alone is enough to open the case."""
    (finding,) = renewals(findings([event("invoice.payment_failed__current_renewal")]))
    assert finding.customer_id == "cus_Ada"
    assert "after 1 failed attempt(s)" in finding.reasoning
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
    """A past_due subscription whose invoice is unknown is still a failed renewal, keyed on
    the latest invoice it names (the one whose payment failed), so that invoice's own
    finding, when it arrives, is the same case."""
    (finding,) = renewals(findings([event("customer.subscription.updated__past_due")]))
    assert finding.key == "failed_renewal:in_Renewal"
    assert finding.subjects == ("in_Renewal", "sub_Cur")
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


def retry_promised(finding) -> bool:
    return any("Let Stripe retry" in step for step in finding.recommended_action.steps)


def test_send_invoice_without_next_attempt_is_not_retries_exhausted(event, findings):
    """send_invoice invoices never carry next_payment_attempt: that is not "retries exhausted"."""
    (finding,) = renewals(findings([event("invoice.payment_failed__send_invoice")]))
    assert "retries_exhausted" not in finding.signals
    assert "send_invoice" in finding.signals
    assert finding.recommended_action.type == "send_invoice_link"
    assert finding.severity == "medium"


def test_hard_decline_does_not_promise_a_retry(event, findings):
    """A stolen_card decline will not pass on retry: advise another payment method, no retry."""
    events = [event("invoice.payment_failed__current_renewal"), event("charge.failed__stolen_card")]
    (finding,) = renewals(findings(events))
    assert not retry_promised(finding)
    assert "hard_decline" in finding.signals and "decline:stolen_card" in finding.signals
    assert finding.recommended_action.type == "send_invoice_link"
    assert "evt_1ChStolen" in finding.evidence
    assert finding.severity == "high"


def test_blocked_do_not_retry_is_a_hard_decline(event, findings):
    """outcome.type blocked / previously_declined_do_not_retry: Stripe will not try the card."""
    events = [
        event("invoice.payment_failed__current_renewal"),
        event("charge.failed__blocked_do_not_retry"),
    ]
    (finding,) = renewals(findings(events))
    assert "hard_decline" in finding.signals and not retry_promised(finding)


def test_soft_decline_keeps_the_scheduled_retry(event, findings):
    """insufficient_funds may pass later: the portal link and Stripe's next attempt stand."""
    events = [
        event("invoice.payment_failed__current_renewal"),
        event("charge.failed__insufficient_funds"),
    ]
    (finding,) = renewals(findings(events))
    assert retry_promised(finding)
    assert finding.recommended_action.type == "send_portal_link"
    assert "decline:insufficient_funds" in finding.signals


def test_decline_code_of_an_expanded_payment_intent_is_read(payload, findings):
    """Old shapes expand payment_intent: last_payment_error.decline_code is the decline."""
    doc = payload("invoice.payment_failed__current_renewal")
    doc["data"]["object"]["payment_intent"] = {
        "id": "pi_Renewal",
        "object": "payment_intent",
        "status": "requires_payment_method",
        "last_payment_error": {"code": "card_declined", "decline_code": "lost_card"},
    }
    (finding,) = renewals(findings([parse_event(doc)]))
    assert "decline:lost_card" in finding.signals and not retry_promised(finding)


def test_unpaid_subscription_does_not_say_retries_continue(event, findings):
    """An unpaid subscription's invoice is not retried: the customer pays it on the invoice."""
    events = [
        event("invoice.payment_failed__current_renewal"),
        event("customer.subscription.updated__unpaid"),
    ]
    (finding,) = renewals(findings(events))
    assert "unpaid" in finding.signals
    assert not retry_promised(finding)
    assert finding.recommended_action.type == "send_invoice_link"


def test_unpaid_subscription_alone_does_not_say_retries_continue(event, findings):
    """Without its invoice, an unpaid subscription still gets the pay-the-invoice advice."""
    (finding,) = renewals(findings([event("customer.subscription.updated__unpaid")]))
    steps = " ".join(finding.recommended_action.steps)
    assert "retry schedule continue" not in steps
    assert finding.recommended_action.type == "send_invoice_link"


def test_uncollectible_invoice_keeps_the_case_open(event, findings):
    """An uncollectible invoice is still owed (it can be paid or voided): the finding holds."""
    events = [
        event("invoice.payment_failed__current_renewal"),
        event("invoice.marked_uncollectible__renewal"),
    ]
    (finding,) = renewals(findings(events))
    assert finding.key == "failed_renewal:in_Renewal"
    assert "uncollectible" in finding.signals
    assert finding.recommended_action.type == "send_invoice_link"


def test_payment_action_required_points_at_the_hosted_invoice(event, findings):
    """3-D Secure on a renewal: authentication happens on the hosted invoice page, not a portal."""
    (finding,) = renewals(findings([event("invoice.payment_action_required__renewal")]))
    assert finding.recommended_action.type == "send_invoice_link"
    assert "authentication_required" in finding.signals
    assert "retries_exhausted" not in finding.signals
    assert "3-D Secure" in finding.recommended_action.steps[0]


def test_finalization_failed_opens_a_case(event, findings):
    """invoice.finalization_failed leaves a draft Stripe cannot charge: a case names the cause."""
    (finding,) = renewals(findings([event("invoice.finalization_failed__tax_location")]))
    assert finding.key == "failed_renewal:in_Renewal"
    assert "finalization_error:customer_tax_location_invalid" in finding.signals
    assert finding.recommended_action.type == "contact_customer"


def test_finalized_invoice_clears_the_finalization_case(event, payload, findings):
    """Once the invoice is finalized (open, not yet attempted) the finalization case clears."""
    finalized = payload("invoice.payment_failed__current_renewal")
    finalized["id"], finalized["type"] = "evt_1InvFinalized", "invoice.finalized"
    finalized["created"] += 86_400
    finalized["data"]["object"].update(attempt_count=0, next_payment_attempt=None)
    events = [event("invoice.finalization_failed__tax_location"), parse_event(finalized)]
    assert renewals(findings(events)) == []


def test_decline_code_of_payment_intent_payment_failed_is_read(event, findings):
    """payment_intent.payment_failed's last_payment_error.decline_code (lost_card) is a hard
    decline even when no charge.failed was delivered."""
    events = [
        event("invoice.payment_failed__current_renewal"),
        event("payment_intent.payment_failed__lost_card"),
    ]
    (finding,) = renewals(findings(events))
    assert "decline:lost_card" in finding.signals and not retry_promised(finding)


def test_the_charge_itself_supersedes_the_payment_intents_view(event, findings):
    """A charge.failed of the same charge (a full record) wins over the partial one."""
    events = [
        event("invoice.payment_failed__current_renewal"),
        event("payment_intent.payment_failed__lost_card"),
        event("charge.failed__insufficient_funds"),
    ]
    (finding,) = renewals(findings(events))
    assert "decline:insufficient_funds" in finding.signals and retry_promised(finding)


def test_canceled_subscription_invoice_gets_the_invoice_link(scenario, findings):
    """After the past-due subscription is canceled Stripe stops collecting its invoice: the
    failed renewal stays (money is owed) with the hosted invoice link, no promised retry, and
    no "the subscription is still wanted" step."""
    (finding,) = renewals(findings(scenario("failed_renewal_then_canceled")))
    action = finding.recommended_action
    assert action.type == "send_invoice_link"
    assert "subscription_canceled" in finding.signals
    assert "stopped Stripe's automatic collection" in finding.reasoning
    assert not any("still wanted" in step for step in action.steps)
    assert any("Do not reactivate" in step for step in action.steps)
