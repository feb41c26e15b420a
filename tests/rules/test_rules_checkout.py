"""incomplete_checkout: a first payment that never completed, until the person succeeds."""

from __future__ import annotations

import copy

from rules import parse_event

DAY = 86_400
T0 = 1_767_225_600


def checkouts(findings_by_key):
    return {k: f for k, f in findings_by_key.items() if f.kind == "incomplete_checkout"}


def test_expired_subscription_and_session(scenario, findings):
    """An incomplete_expired subscription and an expired session each open a case."""
    found = checkouts(findings(scenario("incomplete_checkout")))
    assert sorted(found) == ["incomplete_checkout:cs_test_Ivy", "incomplete_checkout:sub_Ivy"]
    for finding in found.values():
        assert finding.classification == "failed_payment"
        assert finding.recommended_action.type == "contact_customer"
        assert finding.revenue_impact.amount_minor == 0
        assert finding.customer_id == "cus_Ivy"


def test_incomplete_subscription_is_not_a_stuck_first_payment(event, findings):
    """Stripe expires an incomplete subscription after 23 h: only incomplete_expired is a case."""
    events = [
        event("customer.subscription.created__incomplete"),
        event("invoice.payment_action_required__first_invoice"),
    ]
    assert checkouts(findings(events, now=T0 + 3600)) == {}
    assert checkouts(findings(events, now=T0 + 2 * DAY)) == {}


def sepa(created: int, now: int, findings, event, failed: bool = False):
    names = ["checkout.session.completed__sepa_unpaid"]
    if failed:
        names.append("checkout.session.async_payment_failed__sepa")
    return checkouts(findings([event(n) for n in names], now=created + now))


def test_settling_bank_debit_is_not_flagged_after_a_day(event, findings):
    """A SEPA debit takes up to 14 business days: an unpaid completed session waits."""
    assert sepa(T0, 2 * DAY, findings, event) == {}
    assert sepa(T0, 20 * DAY, findings, event) == {}


def test_bank_debit_unsettled_past_the_window_is_flagged(event, findings):
    """Past async_payment_settle_seconds (21 days) the unsettled debit is worth a look."""
    (finding,) = sepa(T0, 22 * DAY, findings, event).values()
    assert finding.signals == ("async_payment_unpaid",)


def test_async_payment_failed_is_a_failure_at_once(event, findings):
    """checkout.session.async_payment_failed is a failure, not a completion: flagged at once."""
    (finding,) = sepa(T0, 6 * DAY, findings, event, failed=True).values()
    assert finding.key == "incomplete_checkout:cs_test_Sepa"
    assert finding.signals == ("async_payment_failed",)
    assert "bank debit failed" in finding.recommended_action.steps[0]


def test_later_completed_checkout_clears_expired_one(event, payload, findings):
    """An expired session followed by a paid one for the same customer is no case."""
    done = payload("checkout.session.completed__subscription")
    done["data"]["object"]["created"] = T0 + 2 * DAY
    events = [event("checkout.session.expired__subscription"), parse_event(done)]
    assert checkouts(findings(events)) == {}


def test_later_live_subscription_clears_expired_session(event, payload, findings):
    """A live subscription created after the expired session clears it."""
    sub = payload("customer.subscription.created__annual")
    sub["data"]["object"]["created"] = T0 + 2 * DAY
    events = [event("checkout.session.expired__subscription"), parse_event(sub)]
    assert checkouts(findings(events)) == {}


def test_later_subscription_clears_incomplete_expired(scenario_payloads, findings):
    """The person retrying successfully (a new live subscription) clears the expired one."""
    payloads = scenario_payloads("incomplete_checkout")
    retry = copy.deepcopy(payloads[1])
    retry["id"] = "evt_IncCoRetry"
    retry["created"] = payloads[-1]["created"] + 3600
    retry["data"]["object"].update(id="sub_IvyRetry", status="active", created=retry["created"])
    assert checkouts(findings([parse_event(p) for p in [*payloads, retry]])) == {}


def test_anonymous_expired_checkout_is_skipped(event, findings):
    """A guest session with no customer anywhere opens no case (no one to contact)."""
    assert checkouts(findings([event("checkout.session.expired__guest")])) == {}


def test_guest_checkout_resolved_by_email(event, payload, findings):
    """A guest session whose email matches a customer record is that customer's case."""
    customer = payload("customer.created__no_payment_method")
    customer["data"]["object"]["email"] = "Guest@Example.com"
    events = [parse_event(customer), event("checkout.session.expired__guest")]
    (finding,) = checkouts(findings(events)).values()
    assert finding.customer_id == "cus_Trial"
    assert "no_checkout_recovery" in finding.product_gaps


def test_canceled_before_its_first_payment_is_an_incomplete_checkout(scenario, findings):
    """3-D Secure failed on the first invoice, then the subscription was canceled: the person
    never managed to pay, so an incomplete checkout (fresh checkout link), and no churn."""
    found = findings(scenario("incomplete_canceled_after_3ds"))
    assert sorted(found) == ["incomplete_checkout:sub_Iris"]
    finding = found["incomplete_checkout:sub_Iris"]
    assert finding.subjects == ("sub_Iris", "in_IrisFirst")
    assert "was canceled before its first payment" in finding.reasoning
    assert finding.signals == ("canceled_before_payment",)


def test_canceled_after_a_paid_invoice_is_churn_not_a_checkout(scenario_payloads, findings):
    """Once any invoice of the subscription was paid it had started: its cancellation is
    churn, not an incomplete checkout."""
    payloads = scenario_payloads("incomplete_canceled_after_3ds")
    paid = copy.deepcopy(payloads[3])
    paid["id"] = "evt_IncPaid"
    paid["type"] = "invoice.paid"
    paid["created"] = payloads[3]["created"] + 10
    paid["data"]["object"].update(status="paid", amount_paid=2900, amount_remaining=0)
    kinds = {
        f.kind
        for f in findings([parse_event(p) for p in [*payloads[:4], paid, payloads[4]]]).values()
    }
    assert kinds == {"churn_signal"}
