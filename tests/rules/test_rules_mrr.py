"""Monthly revenue is right where it can be known and "unknown" (None) where it cannot.

Stripe facts: a Price's ``recurring.usage_type=metered`` bills reported usage and
``billing_scheme=tiered`` has no ``unit_amount`` (docs.stripe.com/api/prices/object); a trial
bills nothing until ``trial_end`` (docs.stripe.com/billing/subscriptions/trials); discounts
come as ``discount.coupon`` (old API) or ``discounts[].source.coupon`` (2025-09-30.clover, an
id unless expanded: docs.stripe.com/changelog/clover/2025-09-30/add-discount-source-property).
"""

from __future__ import annotations

import pytest

from rules import parse_event
from rules.snapshot import snapshot_of


def churn(findings_by_key):
    (finding,) = [f for f in findings_by_key.values() if f.kind == "churn_signal"]
    return finding


@pytest.mark.parametrize(
    "fixture",
    [
        "customer.subscription.updated__cancel_metered",
        "customer.subscription.updated__cancel_tiered",
        "customer.subscription.updated__cancel_discount_id_only",
    ],
)
def test_revenue_that_cannot_be_known_is_unknown(event, findings, fixture):
    """Metered, tiered, or discounted by terms not in the payload: MRR None, said as unknown."""
    finding = churn(findings([event(fixture)]))
    assert finding.revenue_impact.mrr_at_risk_minor is None
    assert "unknown" in finding.reasoning
    assert finding.severity == "medium"  # unknown size: the documented fallback


@pytest.mark.parametrize(
    ("fixture", "mrr"),
    [
        ("customer.subscription.updated__cancel_full_coupon_old", 0),
        ("customer.subscription.updated__cancel_amount_off_old", 2900 - 500),
        ("customer.subscription.updated__cancel_discount_expanded", 2900 * 3 // 4),
    ],
)
def test_discounts_are_applied_when_their_terms_are_in_the_payload(event, findings, fixture, mrr):
    """A 100 %-off coupon is 0; percent and amount off come off the list price, both shapes."""
    finding = churn(findings([event(fixture)]))
    assert finding.revenue_impact.mrr_at_risk_minor == mrr


def test_free_coupon_is_not_severe(event, findings):
    """A subscription paid 0 by a 100 %-off coupon is low severity, not ranked by list price."""
    finding = churn(findings([event("customer.subscription.updated__cancel_full_coupon_old")]))
    assert finding.severity == "low"


def test_trial_bills_nothing_now_and_the_list_price_after(event):
    """A trialing subscription's MRR is 0 now; what it will bill after the trial is separate."""
    (sub,) = snapshot_of([event("customer.subscription.created__trialing")]).subscriptions
    assert sub.monthly_amount_minor == 0
    assert sub.monthly_amount_after_trial_minor == 2900


def test_trial_ending_puts_the_after_trial_revenue_at_risk(event, findings):
    """A trial ending without a card risks the revenue it would bill after the trial."""
    events = [
        event("customer.created__no_payment_method"),
        event("customer.subscription.trial_will_end__no_payment_method"),
    ]
    finding = churn(findings(events))
    (sub,) = snapshot_of(events).subscriptions
    assert sub.monthly_amount_minor == 0
    assert finding.revenue_impact.mrr_at_risk_minor == sub.monthly_amount_after_trial_minor
    assert finding.revenue_impact.mrr_at_risk_minor


def test_package_pricing_bills_started_packages(event):
    """transform_quantity divide_by 10, round up: 12 seats bill as 2 packages."""
    payload = event("customer.subscription.updated__cancel_tiered")
    item = payload.object["items"]["data"][0]
    item["price"].update(
        billing_scheme="per_unit",
        unit_amount=5000,
        transform_quantity={"divide_by": 10, "round": "up"},
    )
    (sub,) = snapshot_of([payload]).subscriptions
    assert sub.monthly_amount_minor == 2 * 5000


def test_trial_left_beside_a_paid_plan_risks_its_after_trial_price(scenario, findings):
    """The forgotten trial bills nothing now; what it would bill at trial_end is at risk."""
    events = scenario("trial_then_paid")
    (finding,) = [f for f in findings(events).values() if f.kind == "duplicate_subscription"]
    trial = snapshot_of(events).subscriptions
    (left,) = [s for s in trial if s.id == "sub_TiaTrial"]
    assert left.monthly_amount_minor == 0
    assert finding.revenue_impact.mrr_at_risk_minor == left.monthly_amount_after_trial_minor > 0


def test_expired_upgrade_compares_list_prices_even_with_a_discount(payload, findings):
    """A 100 %-off coupon on the current plan does not make the whole upgrade price "lost"."""
    plain = findings(
        [parse_event(payload("customer.subscription.pending_update_expired__upgrade"))]
    )
    doc = payload("customer.subscription.pending_update_expired__upgrade")
    coupon = {"id": "FREE", "object": "coupon", "percent_off": 100, "duration": "forever"}
    doc["data"]["object"]["discount"] = {"id": "di_Free", "object": "discount", "coupon": coupon}
    discounted = findings([parse_event(doc)])
    (before,) = [f for f in plain.values() if f.kind == "churn_signal"]
    (after,) = [f for f in discounted.values() if f.kind == "churn_signal"]
    assert after.revenue_impact.mrr_at_risk_minor == before.revenue_impact.mrr_at_risk_minor
