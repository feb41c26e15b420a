"""The action planner: a requested action becomes an exact plan, or a refusal that says why."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from rules import BillingSnapshot, RulesConfig
from rules.actions import (
    ActionPlan,
    ActionRequest,
    ActionType,
    LinkChannel,
    PaymentLinkKind,
    Refusal,
    plan_action,
)
from rules.context import RuleContext
from rules.findings import RecommendedAction
from rules.snapshot import build_snapshot, fold
from tests.rules.test_rules_guard import (
    T0,
    charge,
    customer,
    dispute,
    finding,
    invoice,
    people,
    sub,
)

CANCEL = ActionRequest(ActionType.CANCEL_SUBSCRIPTION)
REFUND = ActionRequest(ActionType.REFUND_CHARGE)


def ctx_of(snapshot: BillingSnapshot) -> RuleContext:
    return RuleContext.build(snapshot, T0 + 3600, RulesConfig())


def duplicate_case(scenario, findings):  # type: ignore[no-untyped-def]
    events = scenario("accidental_duplicate_subscription")
    found = findings(events)
    snapshot = build_snapshot(fold(events).values())
    return ctx_of(snapshot), found["duplicate_subscription:sub_AdaB"]


def test_cancel_plans_the_newer_duplicate_now_and_irreversible(scenario, findings):
    """Cancel on an accidental duplicate targets the recommended (newer) subscription, now."""
    ctx, dup = duplicate_case(scenario, findings)
    plan = plan_action(ctx, dup, CANCEL)
    assert isinstance(plan, ActionPlan), plan
    assert (plan.target, plan.reversible, plan.mode) == (
        dup.recommended_action.target,
        False,
        "cancel_subscription",
    )


def test_cancel_at_period_end_is_reversible_and_says_how(scenario, findings):
    """A cancellation at period end can be undone until then, and the plan says how."""
    ctx, dup = duplicate_case(scenario, findings)
    plan = plan_action(ctx, dup, ActionRequest(ActionType.CANCEL_SUBSCRIPTION, at_period_end=True))
    assert isinstance(plan, ActionPlan)
    assert plan.reversible and plan.mode == "cancel_subscription_at_period_end"
    assert plan.undo and "remove_scheduled_cancel" in plan.undo


def test_refund_plans_exactly_the_duplicate_charge(scenario, findings):
    """Refund without a target refunds the one charge the case names, for its full amount."""
    ctx, dup = duplicate_case(scenario, findings)
    plan = plan_action(ctx, dup, REFUND)
    assert isinstance(plan, ActionPlan), plan
    charge_of = ctx.snapshot.charge(plan.target)
    assert charge_of is not None and f"Refund only {charge_of.id}" in " ".join(
        dup.recommended_action.steps
    )
    assert (plan.amount_minor, plan.currency) == (charge_of.amount, charge_of.currency)


def test_refund_is_refused_for_team_purchase(scenario, findings):
    """A team purchase is never refunded from the case."""
    found = findings(scenario("team_purchase"))
    (team,) = [f for f in found.values() if f.classification == "team_purchase"]
    snapshot = build_snapshot(fold(scenario("team_purchase")).values())
    some_charge = "ch_Seat"  # refused before any charge is looked up
    refusal = plan_action(
        ctx_of(snapshot), team, ActionRequest(ActionType.REFUND_CHARGE, some_charge)
    )
    assert isinstance(refusal, Refusal) and "team_purchase" in refusal.reason


def test_refund_of_a_charged_back_charge_is_refused_by_the_guard():
    """The guard's chargeback rule refuses the action, with the guard's reason."""
    snap = BillingSnapshot(
        customers=(customer(),),
        charges=(charge("ch_B", "pi_B"),),
        disputes=(dispute("dp_B", "ch_B", "needs_response", False),),
    )
    case = finding("ch_B", RecommendedAction("contact_customer", "cus_G", True, ()))
    refusal = plan_action(ctx_of(snap), case, ActionRequest(ActionType.REFUND_CHARGE, "ch_B"))
    assert isinstance(refusal, Refusal) and "chargeback" in refusal.reason


def test_refund_of_more_than_is_left_is_refused():
    """A partly refunded charge is refused (the guard), and so is an amount above the charge."""
    snap = BillingSnapshot(
        customers=(customer(),),
        charges=(charge("ch_A", "pi_A", refunded=100), charge("ch_C", "pi_C")),
    )
    case = finding("ch_C", RecommendedAction("contact_customer", "cus_G", True, ()))
    ctx = ctx_of(snap)
    partly = plan_action(ctx, case, ActionRequest(ActionType.REFUND_CHARGE, "ch_A"))
    too_much = plan_action(ctx, case, ActionRequest(ActionType.REFUND_CHARGE, "ch_C", 2901))
    assert isinstance(partly, Refusal) and "already has a refund" in partly.reason
    assert isinstance(too_much, Refusal) and "29.00 USD left" in too_much.reason


def test_multi_seat_cancel_is_refused_by_the_guard_and_annual_needs_confirmation():
    """Team seats are never cancelled; an annual single seat shows its shape to confirm."""
    seats = sub("sub_Team", quantity=5)
    yearly = sub("sub_Year", created=T0 + 60)
    yearly = replace(yearly, items=(replace(yearly.items[0], interval="year"),))
    snap = BillingSnapshot(customers=(customer(),), subscriptions=(sub("sub_Keep"), seats, yearly))
    case = finding("sub_Year", RecommendedAction("contact_customer", "cus_G", True, ()))
    ctx = ctx_of(snap)
    refused = plan_action(ctx, case, ActionRequest(ActionType.CANCEL_SUBSCRIPTION, "sub_Team"))
    annual = plan_action(ctx, case, ActionRequest(ActionType.CANCEL_SUBSCRIPTION, "sub_Year"))
    assert isinstance(refused, Refusal) and "team seats" in refused.reason
    assert isinstance(annual, ActionPlan) and annual.needs_contract_confirmation
    assert annual.contract_shape == ("sub_Year bills yearly",)


def test_remove_scheduled_cancel_needs_one_scheduled():
    """Removing a scheduled cancellation plans only when one is scheduled."""
    snap = BillingSnapshot(
        customers=(customer(),),
        subscriptions=(sub("sub_End", cancel_at_period_end=True), sub("sub_On")),
    )
    case = finding("sub_End", RecommendedAction("contact_customer", "cus_G", True, ()))
    ctx = ctx_of(snap)
    plan = plan_action(ctx, case, ActionRequest(ActionType.REMOVE_SCHEDULED_CANCEL, "sub_End"))
    none = plan_action(ctx, case, ActionRequest(ActionType.REMOVE_SCHEDULED_CANCEL, "sub_On"))
    assert isinstance(plan, ActionPlan) and plan.reversible
    assert isinstance(none, Refusal)


def test_pay_invoice_plans_the_open_amount():
    """Pay-now plans the open invoice's remaining amount; a paid one is refused."""
    open_one = replace(
        invoice("in_O", "sub_On", "pi_O"), status="open", amount_paid=0, amount_remaining=2900
    )
    snap = BillingSnapshot(
        customers=(customer(),),
        subscriptions=(sub("sub_On"),),
        invoices=(open_one, invoice("in_P", "sub_On", "pi_P")),
    )
    case = finding("in_O", RecommendedAction("retry_payment", "in_O", True, ()), "failed_renewal")
    ctx = ctx_of(snap)
    plan = plan_action(ctx, case, ActionRequest(ActionType.PAY_INVOICE))
    paid = plan_action(ctx, case, ActionRequest(ActionType.PAY_INVOICE, "in_P"))
    assert isinstance(plan, ActionPlan) and (plan.target, plan.amount_minor) == ("in_O", 2900)
    assert isinstance(paid, Refusal)


def open_invoice_snapshot() -> BillingSnapshot:
    open_one = replace(
        invoice("in_O", "sub_On", "pi_O"), status="open", amount_paid=0, amount_remaining=2900
    )
    return BillingSnapshot(
        customers=(customer(),),
        subscriptions=(replace(sub("sub_On"), latest_invoice_id="in_O"),),
        invoices=(open_one, invoice("in_P", "sub_On", "pi_P")),
    )


def test_payment_link_is_the_portal_while_stripe_retries():
    """A renewal Stripe will retry gets a billing-portal session for the customer, emailed
    unless told to print; the link changes nothing in Stripe, so it is reversible."""
    ctx = ctx_of(open_invoice_snapshot())
    case = finding(
        "sub_On", RecommendedAction("send_portal_link", "cus_G", True, ()), "failed_renewal"
    )
    plan = plan_action(ctx, case, ActionRequest(ActionType.SEND_PAYMENT_LINK))
    assert isinstance(plan, ActionPlan), plan
    assert (plan.link, plan.target, plan.channel, plan.mode) == (
        PaymentLinkKind.BILLING_PORTAL,
        "cus_G",
        LinkChannel.EMAIL,
        "send_payment_link_email",
    )
    assert plan.reversible and plan.amount_minor == 2900


def test_payment_link_is_the_invoice_page_when_it_must_be_paid_there():
    """3-D Secure, a hard decline, retries over: the hosted invoice page of the case's open
    invoice, here printed to paste."""
    ctx = ctx_of(open_invoice_snapshot())
    case = finding(
        "sub_On", RecommendedAction("send_invoice_link", "in_O", True, ()), "failed_renewal"
    )
    request = ActionRequest(ActionType.SEND_PAYMENT_LINK, channel=LinkChannel.PRINT)
    plan = plan_action(ctx, case, request)
    assert isinstance(plan, ActionPlan), plan
    assert (plan.link, plan.target, plan.mode) == (
        PaymentLinkKind.HOSTED_INVOICE,
        "in_O",
        "send_payment_link_print",
    )


def test_no_payment_link_for_a_paid_invoice_and_no_channel_on_other_actions():
    """A link to pay a paid invoice is refused; only a payment link has a channel."""
    ctx = ctx_of(open_invoice_snapshot())
    case = finding(
        "in_P", RecommendedAction("send_invoice_link", "in_P", True, ()), "failed_renewal"
    )
    paid = plan_action(ctx, case, ActionRequest(ActionType.SEND_PAYMENT_LINK, "in_P"))
    channel = plan_action(ctx, case, ActionRequest(ActionType.NO_ACTION, channel=LinkChannel.PRINT))
    assert isinstance(paid, Refusal) and "paid" in paid.reason
    assert isinstance(channel, Refusal)


def test_pay_invoice_finds_the_open_invoice_of_a_subscription_case():
    """A case about the subscription pays its latest invoice when that one is open."""
    ctx = ctx_of(open_invoice_snapshot())
    case = finding(
        "sub_On", RecommendedAction("send_portal_link", "cus_G", True, ()), "failed_renewal"
    )
    plan = plan_action(ctx, case, ActionRequest(ActionType.PAY_INVOICE))
    assert isinstance(plan, ActionPlan) and (plan.target, plan.amount_minor) == ("in_O", 2900)


@settings(max_examples=300, deadline=None, database=None)
@given(snapshot=people(), data=st.data())
def test_no_plan_refunds_a_disputed_charge_or_more_than_is_left(snapshot, data):
    """Over generated people and requests: a planned refund is never of a charge under a
    chargeback (or an already refunded one), and never more than the unrefunded amount."""
    if not snapshot.charges:
        return
    target = data.draw(st.sampled_from([c.id for c in snapshot.charges]))
    amount = data.draw(st.one_of(st.none(), st.integers(-100, 20_000)))
    classification = data.draw(st.sampled_from(("accidental_duplicate", "failed_payment")))
    case = finding(target, RecommendedAction("refund_charge", target, False, ()))
    case = replace(case, classification=classification)
    plan = plan_action(
        ctx_of(snapshot), case, ActionRequest(ActionType.REFUND_CHARGE, target, amount)
    )
    if isinstance(plan, Refusal):
        return
    charged = snapshot.charge(target)
    assert charged is not None
    assert not any(d.blocks_refund for d in snapshot.disputes_of(target))
    assert charged.amount_refunded == 0
    assert plan.amount_minor is not None and 0 < plan.amount_minor <= charged.amount
