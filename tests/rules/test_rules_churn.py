"""churn_signal: cancellations, downgrades, trials ending without a card, cards expiring."""

from __future__ import annotations

import dataclasses

import pytest

from rules import evaluate, parse_event, records_from_event
from rules.churn import read_cancellation
from rules.snapshot import snapshot_of

DAY = 86_400
T0 = 1_767_225_600


def churn(findings_by_key):
    return {k: f for k, f in findings_by_key.items() if f.kind == "churn_signal"}


def test_cancel_at_period_end_with_missing_features(scenario, findings):
    """cancel_at_period_end with feedback missing_features is a product failure to ask about."""
    (finding,) = churn(findings(scenario("churn_cancel_missing_features"))).values()
    assert finding.key == "churn_signal:sub_Max"
    assert finding.classification == "product_failure"
    assert finding.signals == ("cancel_at_period_end",)
    assert finding.product_gaps == ("missing_features",)
    assert finding.question is None
    assert finding.recommended_action.type == "contact_customer"
    assert finding.revenue_impact.mrr_at_risk_minor == 9900
    assert finding.severity == "medium"
    assert finding.auto_clear is True


def test_cancel_turned_off_clears(scenario_payloads, findings):
    """Turning cancel_at_period_end off again clears the signal."""
    payloads = scenario_payloads("churn_cancel_missing_features")
    undo = {**payloads[2], "id": "evt_ChurnUndo", "created": payloads[2]["created"] + 60}
    undo["data"] = {
        "object": {
            **payloads[2]["data"]["object"],
            "cancel_at_period_end": False,
            "cancel_at": None,
        },
        "previous_attributes": {"cancel_at_period_end": True},
    }
    assert churn(findings([parse_event(p) for p in [*payloads, undo]])) == {}


@pytest.mark.parametrize(
    ("reason", "feedback", "comment", "classification"),
    [
        ("cancellation_requested", "missing_features", None, "product_failure"),
        ("cancellation_requested", "low_quality", None, "product_failure"),
        ("cancellation_requested", "too_complex", None, "product_failure"),
        ("cancellation_requested", "customer_service", None, "product_failure"),
        (
            "cancellation_requested",
            None,
            "Couldn't find how to cancel, had to email you",
            "missing_self_serve",
        ),
        ("cancellation_requested", None, "cancel please", "unclassified"),
        ("cancellation_requested", "too_expensive", None, "unclassified"),
        ("cancellation_requested", "unused", None, "unclassified"),
        ("cancellation_requested", "switched_service", None, "unclassified"),
        ("cancellation_requested", "other", "meh", "unclassified"),
        ("cancellation_requested", None, None, "unclassified"),
        ("payment_failed", None, None, "failed_payment"),
    ],
)
def test_cancellation_mapping(event, reason, feedback, comment, classification):
    """cancellation_details map to one bucket; undecidable ones ask a question instead."""
    sub = records_from_event(event("customer.subscription.updated__cancel_at_period_end"))[0].data
    sub = dataclasses.replace(
        sub,
        cancellation_reason=reason,
        cancellation_feedback=feedback,
        cancellation_comment=comment,
    )
    reading = read_cancellation(sub)
    assert reading.classification == classification
    assert (reading.question is not None) == (classification == "unclassified")


def test_deleted_subscription_is_event_derived(event):
    """A cancellation is reported with its own event, not re-derived from state afterwards."""
    deleted = event("customer.subscription.deleted__too_expensive")
    other = event("customer.created__current")
    snapshot = snapshot_of([deleted, other])
    (finding,) = evaluate(snapshot, deleted, deleted.created)
    assert finding.key == "churn_signal:sub_Cur"
    assert finding.auto_clear is False
    assert finding.classification == "unclassified"
    assert finding.question and "price" in finding.question
    assert "feedback:too_expensive" in finding.signals
    assert evaluate(snapshot, other, deleted.created) == ()


def test_cancellation_billing_ops_executed_is_not_churn(event):
    """The same deletion is churn when the customer canceled, and none when billing-ops canceled
    it (an operator's action on a case): Stripe's ``cancellation_details.reason`` is
    ``cancellation_requested`` either way (API reference, Subscription object), so only the
    worker's own audit can tell them apart."""
    deleted = event("customer.subscription.deleted__too_expensive")
    by_customer = snapshot_of([deleted])
    by_billing_ops = dataclasses.replace(
        by_customer, canceled_by_billing_ops=frozenset({"sub_Cur"})
    )
    assert [f.key for f in evaluate(by_customer, deleted, deleted.created)] == [
        "churn_signal:sub_Cur"
    ]
    assert evaluate(by_billing_ops, deleted, deleted.created) == ()


def test_cancel_at_period_end_billing_ops_set_is_not_churn(scenario):
    """A subscription billing-ops set to cancel at period end is no customer on the way out."""
    events = scenario("churn_cancel_missing_features")
    by_customer = snapshot_of(events)
    by_billing_ops = dataclasses.replace(
        by_customer, canceled_by_billing_ops=frozenset({"sub_Max"})
    )
    last = events[-1]
    assert [f.key for f in evaluate(by_customer, last, last.created)] == ["churn_signal:sub_Max"]
    assert evaluate(by_billing_ops, last, last.created) == ()


def test_deleted_after_failed_payments(event, findings):
    """A subscription Stripe canceled for failed payments is involuntary churn."""
    (finding,) = churn(findings([event("customer.subscription.deleted__payment_failed")])).values()
    assert finding.classification == "failed_payment"


def test_deleted_with_self_serve_comment(event, findings):
    """A support-made cancellation whose comment says the customer could not find it."""
    (finding,) = churn(
        findings([event("customer.subscription.deleted__self_serve_comment")])
    ).values()
    assert finding.classification == "missing_self_serve"
    assert "no_cancel_flow" in finding.product_gaps


def test_downgrade_current_price(event, findings):
    """A price downgrade (previous items) is an unclassified signal with the MRR lost."""
    (finding,) = churn(findings([event("customer.subscription.updated__downgrade_price")])).values()
    assert finding.signals == ("downgrade", "price_down")
    assert finding.classification == "unclassified" and finding.question
    assert finding.revenue_impact.mrr_at_risk_minor == 9900 - 2900
    assert finding.auto_clear is False


def test_downgrade_seats_old_shape(event, findings):
    """An old-API quantity drop 5 -> 3 is a seat reduction on a team contract."""
    (finding,) = churn(
        findings([event("customer.subscription.updated__downgrade_quantity_old")])
    ).values()
    assert "seat_reduction" in finding.signals
    assert finding.revenue_impact.mrr_at_risk_minor == 2 * 2900
    assert finding.verify_contract is True
    assert finding.recommended_action.steps[0].startswith("Verify the contract shape")


def test_downgrade_plan_old_shape(event, findings):
    """An old-API plan change read from previous_attributes.plan."""
    (finding,) = churn(
        findings([event("customer.subscription.updated__downgrade_plan_old")])
    ).values()
    assert finding.revenue_impact.mrr_at_risk_minor == 5000 - 2900


def test_upgrade_is_not_churn(event, findings):
    """A move to a bigger plan is not a churn signal."""
    assert churn(findings([event("customer.subscription.updated__upgrade")])) == {}


def test_switch_to_annual_is_not_a_downgrade(payload, findings):
    """Monthly -> annual lowers the monthly figure but is a commitment, not churn."""
    doc = payload("customer.subscription.updated__upgrade")
    price = doc["data"]["object"]["items"]["data"][0]["price"]
    price.update(unit_amount=29000, recurring={"interval": "year", "interval_count": 1})
    doc["data"]["previous_attributes"]["items"]["data"][0]["price"]["unit_amount"] = 2900
    assert churn(findings([parse_event(doc)])) == {}


def test_downgrade_merges_with_cancel_state(event, payload, findings):
    """A downgrade on a subscription already set to cancel is one case with both signals."""
    doc = payload("customer.subscription.updated__downgrade_price")
    doc["data"]["object"]["cancel_at_period_end"] = True
    (finding,) = churn(findings([parse_event(doc)])).values()
    assert finding.signals == ("cancel_at_period_end", "downgrade", "price_down")
    assert finding.auto_clear is True


def trial_events(event):
    return [
        event("customer.created__no_payment_method"),
        event("customer.subscription.trial_will_end__no_payment_method"),
    ]


def test_trial_ending_without_payment_method(event, findings):
    """A trial ending within 3 days with no payment method on file: send a portal link."""
    (finding,) = churn(findings(trial_events(event))).values()
    assert finding.signals == ("trial_ending_no_payment_method",)
    assert finding.classification == "failed_payment"
    assert finding.recommended_action.type == "send_portal_link"
    assert "evt_1CusNoPm" in finding.evidence


def test_trial_with_payment_method_is_fine(event, payload, findings):
    """A customer with a default payment method is not at risk when the trial ends."""
    customer = payload("customer.created__no_payment_method")
    customer["data"]["object"]["invoice_settings"]["default_payment_method"] = "pm_Tess"
    events = [
        parse_event(customer),
        event("customer.subscription.trial_will_end__no_payment_method"),
    ]
    assert churn(findings(events)) == {}


def test_trial_far_from_ending_is_fine(event, payload, findings):
    """A trial ending beyond trial_ending_days is not yet a signal."""
    doc = payload("customer.subscription.trial_will_end__no_payment_method")
    doc["data"]["object"]["trial_end"] += 30 * DAY
    events = [event("customer.created__no_payment_method"), parse_event(doc)]
    assert churn(findings(events)) == {}


def test_card_expiring_on_live_subscription(event, findings):
    """The card renewals use expires within 30 days: churn signal with a portal link."""
    events = [
        event("customer.subscription.created__old_plan"),
        event("charge.succeeded__old_source"),
    ]
    (finding,) = churn(findings(events, now=T0 + 40 * DAY)).values()
    assert finding.signals == ("card_expiring",)
    assert "evt_1ChOld" in finding.evidence
    assert "2026-03-01" in finding.reasoning
    assert churn(findings(events, now=T0)) == {}  # 59 days away: not yet


def test_source_expiring_notice(event, findings):
    """customer.source.expiring on a customer with a live subscription is a signal."""
    events = [
        event("customer.subscription.created__annual"),
        event("customer.source.expiring__card"),
    ]
    (finding,) = churn(findings(events, now=T0 + 5 * DAY)).values()
    assert "card_expiring" in finding.signals
    assert finding.verify_contract is True  # annual


def test_two_cards_and_no_known_default_is_no_guess(event, findings):
    """With two saved cards and no default known, billing-ops does not guess which one renews."""
    events = [
        event("customer.subscription.created__annual"),
        event("customer.source.expiring__card"),
        event("payment_method.attached__card"),
    ]
    assert churn(findings(events, now=T0 + 5 * DAY)) == {}


def saved_card(payload, pm_id: str, exp_year: int, created: int):
    doc = payload("payment_method.attached__card")
    doc["id"] = f"evt_attach_{pm_id}"
    doc["created"] = created
    doc["data"]["object"].update(id=pm_id, created=created)
    doc["data"]["object"]["card"].update(exp_month=1, exp_year=exp_year, last4=pm_id[-4:])
    return parse_event(doc)


def test_customer_default_card_counts_not_the_newest(event, payload, findings):
    """The customer's invoice_settings default expires: a newer, non-default card hides nothing."""
    customer = payload("customer.created__current")
    customer["data"]["object"]["invoice_settings"]["default_payment_method"] = "pm_Old0005"
    events = [
        parse_event(customer),
        event("customer.subscription.created__annual"),
        saved_card(payload, "pm_Old0005", 2026, T0),
        saved_card(payload, "pm_New4242", 2031, T0 + 60),
    ]
    (finding,) = churn(findings(events, now=T0 + 5 * DAY)).values()
    assert "card_expiring" in finding.signals
    assert "ending 0005" in finding.reasoning


def test_subscription_default_card_wins_over_the_customer_default(event, payload, findings):
    """subscription.default_payment_method renews first: the customer's expiring default is moot."""
    sub = payload("customer.subscription.created__annual")
    sub["data"]["object"]["default_payment_method"] = "pm_Sub4242"
    customer = payload("customer.created__current")
    customer["data"]["object"]["invoice_settings"]["default_payment_method"] = "pm_Cus0005"
    events = [
        parse_event(customer),
        parse_event(sub),
        saved_card(payload, "pm_Sub4242", 2031, T0),
        saved_card(payload, "pm_Cus0005", 2026, T0 + 60),
    ]
    assert churn(findings(events, now=T0 + 5 * DAY)) == {}


def test_paused_subscription_opens_a_case(event, findings):
    """A trial that ended without a payment method pauses the subscription: ask for one."""
    (finding,) = churn(findings([event("customer.subscription.paused__trial_ended")])).values()
    assert finding.signals == ("paused_trial_ended_without_payment_method",)
    assert finding.recommended_action.type == "send_portal_link"
    assert any("resume" in step for step in finding.recommended_action.steps)


def test_payment_disputed_cancellation_is_not_the_customers(event, findings):
    """reason payment_disputed: Stripe canceled it, so nobody asks the customer why they left."""
    (finding,) = churn(
        findings([event("customer.subscription.deleted__payment_disputed")])
    ).values()
    assert finding.question is None
    assert "disputed" in finding.reasoning
    assert "cancellation_reason:payment_disputed" in finding.signals


def test_pending_update_expired_tells_the_customer_it_did_not_apply(event, findings):
    """customer.subscription.pending_update_expired: the upgrade never applied; contact them."""
    found = findings([event("customer.subscription.pending_update_expired__upgrade")])
    (finding,) = churn(found).values()
    assert finding.signals == ("pending_update_expired",)
    assert finding.revenue_impact.mrr_at_risk_minor == 7000
    assert finding.classification == "failed_payment"
