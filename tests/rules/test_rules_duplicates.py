"""duplicate_subscription and duplicate_charge: refund a mistake, never a team or one payment."""

from __future__ import annotations

import pytest

from rules import parse_event

ACCIDENTAL = "accidental_duplicate_subscription"
DAY = 86_400


def tweak(payloads, index, **changes):
    """Change fields of one scenario event's data.object (index into the file order)."""
    payloads[index]["data"]["object"].update(changes)
    return payloads


def parsed(payloads):
    return [parse_event(p) for p in payloads]


def dup_subs(findings_by_key):
    return [f for f in findings_by_key.values() if f.kind == "duplicate_subscription"]


def test_accidental_duplicate_cancels_newer_and_refunds_only_its_charge(scenario, findings):
    """Two one-seat checkouts 30 min apart by one email: cancel the newer, refund its charge."""
    (finding,) = dup_subs(findings(scenario(ACCIDENTAL)))
    assert finding.classification == "accidental_duplicate"
    assert finding.subjects[:2] == ("sub_AdaB", "sub_AdaA")
    assert finding.customer_id == "cus_AdaB"
    action = finding.recommended_action
    assert (action.type, action.target, action.reversible) == (
        "cancel_subscription",
        "sub_AdaB",
        False,
    )
    assert action.steps[0].startswith("Restore self-serve")
    assert "cancel the newer subscription sub_AdaB" in action.steps[1]
    assert action.steps[2].startswith("Refund only ch_AdaB")
    assert action.steps[3].startswith("Document") and action.steps[4].startswith("Follow up")
    assert finding.revenue_impact.amount_minor == 2900
    assert finding.revenue_impact.currency == "usd"
    assert "no_duplicate_guard" in finding.product_gaps
    assert "same_email_different_customer" in finding.signals
    assert finding.auto_clear and not finding.verify_contract
    assert finding.question is None


def test_same_customer_record_duplicate(scenario_payloads, findings):
    """Two subscriptions on one customer record are a duplicate too."""
    payloads = scenario_payloads(ACCIDENTAL)
    tweak(payloads, 6, customer="cus_AdaA")
    (finding,) = dup_subs(findings(parsed(payloads)))
    assert finding.classification == "accidental_duplicate"
    assert "same_customer" in finding.signals


def test_different_people_are_not_duplicates(scenario_payloads, findings):
    """Two customers with different emails buying the same plan is not a duplicate."""
    payloads = scenario_payloads(ACCIDENTAL)
    tweak(payloads, 5, email="grace@example.com")
    tweak(payloads, 8, customer_email="grace@example.com")
    payloads[9]["data"]["object"]["customer_details"]["email"] = "grace@example.com"
    assert dup_subs(findings(parsed(payloads))) == []


def test_canceled_duplicate_clears(scenario_payloads, findings):
    """Once the newer subscription is canceled the finding no longer holds."""
    payloads = scenario_payloads(ACCIDENTAL)
    cancel = {**payloads[6], "id": "evt_AccDupCancel", "type": "customer.subscription.deleted"}
    cancel["created"] = payloads[6]["created"] + 3600
    cancel["data"] = {"object": {**payloads[6]["data"]["object"], "status": "canceled"}}
    assert dup_subs(findings(parsed([*payloads, cancel]))) == []


def test_team_purchase_is_preserved(scenario, findings):
    """A second purchase with 5 seats is a team purchase: contact, never refund."""
    (finding,) = dup_subs(findings(scenario("team_purchase")))
    assert finding.classification == "team_purchase"
    assert finding.recommended_action.type == "contact_customer"
    assert finding.revenue_impact.amount_minor == 0
    assert finding.verify_contract is True
    assert finding.recommended_action.steps[0].startswith("Verify the contract shape")
    assert not any(s.startswith("Refund") for s in finding.recommended_action.steps)
    assert "no_seat_explanation" in finding.product_gaps


def test_seat_metadata_alone_means_team(scenario_payloads, findings):
    """One seat but a seat/team metadata key is still a team purchase."""
    payloads = scenario_payloads(ACCIDENTAL)
    tweak(payloads, 6, metadata={"team_id": "acme"})
    (finding,) = dup_subs(findings(parsed(payloads)))
    assert finding.classification == "team_purchase"


def test_different_product_sets_mean_team(scenario_payloads, findings):
    """A newer subscription that adds another product next to the shared one is not a duplicate."""
    payloads = scenario_payloads(ACCIDENTAL)
    items = payloads[6]["data"]["object"]["items"]["data"]
    extra = {**items[0], "id": "si_Extra"}
    extra["price"] = {**items[0]["price"], "id": "price_Addon", "product": "prod_Addon"}
    items.append(extra)
    (finding,) = dup_subs(findings(parsed(payloads)))
    assert finding.classification == "team_purchase"


def test_far_apart_is_unclassified_with_question(scenario_payloads, findings):
    """Same product, one seat each, but created weeks apart: ask, do not act."""
    payloads = scenario_payloads(ACCIDENTAL)
    tweak(payloads, 6, created=payloads[6]["data"]["object"]["created"] + 20 * DAY)
    (finding,) = dup_subs(findings(parsed(payloads)))
    assert finding.classification == "unclassified"
    assert finding.question and "sub_AdaB" in finding.question
    assert finding.recommended_action.type == "contact_customer"
    assert finding.revenue_impact.amount_minor == 0


def test_annual_duplicate_verifies_contract_first(scenario_payloads, findings):
    """An annual duplicate keeps its classification but starts with the contract check."""
    payloads = scenario_payloads(ACCIDENTAL)
    for index in (1, 6):
        price = payloads[index]["data"]["object"]["items"]["data"][0]["price"]
        price["recurring"]["interval"] = "year"
    (finding,) = dup_subs(findings(parsed(payloads)))
    assert finding.classification == "accidental_duplicate"
    assert finding.verify_contract is True
    assert finding.recommended_action.steps[0].startswith("Verify the contract shape")


def charges(findings_by_key):
    return [f for f in findings_by_key.values() if f.kind == "duplicate_charge"]


def test_duplicate_charge_refunds_the_later_one(scenario, findings):
    """Two equal successful charges 40 s apart: refund the later one only."""
    (finding,) = charges(findings(scenario("duplicate_charge")))
    assert finding.key == "duplicate_charge:ch_Bob2"
    assert finding.subjects == ("ch_Bob2", "ch_Bob1")
    assert finding.classification == "accidental_duplicate"
    assert finding.severity == "high"
    action = finding.recommended_action
    assert (action.type, action.target) == ("refund_charge", "ch_Bob2")
    assert action.steps[0].startswith("Verify")
    assert finding.revenue_impact.amount_minor == 4900
    assert finding.evidence == ("evt_DupCh03", "evt_DupCh04")


@pytest.mark.parametrize(
    "change",
    [
        {"amount_refunded": 4900, "refunded": True},
        {"amount_refunded": 100},
        {"amount": 4800},
        {"currency": "eur"},
        {"payment_intent": "pi_Bob1"},
        {"status": "failed", "paid": False},
        {"created": 1767225600 + 100 + 601},
    ],
    ids=[
        "refunded",
        "partly_refunded",
        "other_amount",
        "other_currency",
        "same_intent",
        "failed",
        "outside_window",
    ],
)
def test_not_a_duplicate_charge(scenario_payloads, findings, change):
    """Refunded, different, failed, same-intent or far-apart charges are not duplicates."""
    payloads = scenario_payloads("duplicate_charge")
    tweak(payloads, 2, **change)
    assert charges(findings(parsed(payloads))) == []


def test_same_card_across_customers_is_a_duplicate(scenario_payloads, findings):
    """The same card fingerprint links two charges even on different customer records."""
    payloads = scenario_payloads("duplicate_charge")
    tweak(payloads, 2, customer="cus_Bob2")
    (finding,) = charges(findings(parsed(payloads)))
    assert finding.customer_id == "cus_Bob2"
    assert "same_card" in finding.signals


def test_one_payment_seen_many_ways_is_not_a_duplicate(scenario, findings):
    """succeeded + captured + updated events and the paid invoice are one payment."""
    assert charges(findings(scenario("one_payment_many_events"))) == []


def test_disputed_twin_is_never_refunded(scenario, findings):
    """Two equal charges, the later one under a chargeback: no case says refund it."""
    found = findings(scenario("duplicate_charge_disputed"))
    assert charges(found) == []
    for finding in found.values():
        action = finding.recommended_action
        assert not (action.type == "refund_charge" and action.target == "ch_Bob2")
        assert not any(step.startswith("Refund") for step in action.steps)


def test_team_seats_bought_minutes_apart_are_not_a_duplicate_charge(scenario, findings):
    """Two 5-seat subscriptions, each paying its own invoice: a team purchase, no refund."""
    found = findings(scenario("team_purchase_same_card"))
    assert charges(found) == []
    (finding,) = dup_subs(found)
    assert finding.classification == "team_purchase"
    assert not any(f.recommended_action.type == "refund_charge" for f in found.values())


def test_charges_of_different_invoices_are_two_purchases(scenario_payloads, findings):
    """Equal charges 40 s apart that each paid a different invoice are not one payment twice."""
    payloads = scenario_payloads("duplicate_charge")
    tweak(payloads, 1, invoice="in_Bob1")
    tweak(payloads, 2, invoice="in_Bob2")
    tweak(payloads, 3, invoice="in_Bob1")
    assert charges(findings(parsed(payloads))) == []


def test_rebuying_after_a_scheduled_cancel_keeps_the_new_subscription(scenario, findings):
    """Old one set to cancel at period end, new one bought next day: cancel nothing, say why."""
    (finding,) = dup_subs(findings(scenario("resubscribe_after_cancel")))
    action = finding.recommended_action
    assert action.type == "contact_customer"
    assert action.steps[0].startswith("Keep sub_RaeNew")
    assert "ends by itself" in action.steps[1]
    assert not any(step.startswith(("Refund", "Fix")) for step in action.steps)
    assert "resubscribe_after_cancel" in finding.signals
    assert finding.severity == "low"


def test_buying_during_a_trial_cancels_the_trial_not_the_paid_plan(scenario, findings):
    """A trial still running when the paid plan is bought: cancel the trial, refund nothing."""
    (finding,) = dup_subs(findings(scenario("trial_then_paid")))
    action = finding.recommended_action
    assert (action.type, action.target) == ("cancel_subscription", "sub_TiaTrial")
    assert action.steps[0].startswith("Keep sub_TiaPaid")
    assert not any(step.startswith("Refund") for step in action.steps)
    assert finding.revenue_impact.amount_minor == 0
    assert "upgrade_from_trial" in finding.signals


def test_a_second_trial_next_to_a_paid_plan_refunds_nothing(scenario_payloads, findings):
    """A newer trialing duplicate is cancelled; it took no money, so there is nothing to refund."""
    payloads = scenario_payloads("trial_then_paid")
    trial, paid = payloads[1]["data"]["object"], payloads[2]["data"]["object"]
    trial["status"], paid["status"] = "active", "trialing"
    paid["trial_end"] = paid["created"] + 14 * DAY
    (finding,) = dup_subs(findings(parsed(payloads[:3])))
    assert finding.recommended_action.target == "sub_TiaPaid"
    assert any(s.startswith("Nothing to refund") for s in finding.recommended_action.steps)
