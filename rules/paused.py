"""Paused subscriptions: a trial ended without a payment method.

"A subscription can only enter a paused status when a trial ends without a payment method. A
paused subscription doesn't generate invoices and can be resumed after your customer adds their
payment method" (API reference, Subscription object, ``status``; trial settings
``end_behavior.missing_payment_method=pause`` in
https://docs.stripe.com/billing/subscriptions/trials). Nothing is owed and nothing bills, so the
customer silently stops being a customer unless someone asks them for a payment method.
"""

from __future__ import annotations

from rules.context import RuleContext
from rules.findings import (
    Finding,
    RecommendedAction,
    RevenueImpact,
    evidence_of,
    severity_for_mrr,
    with_contract_check,
)
from rules.formatting import format_money, format_time
from rules.model import Subscription


def find_paused_subscriptions(ctx: RuleContext) -> list[Finding]:
    """One finding per paused subscription: ask for a payment method, then resume it."""
    return [
        _paused_finding(ctx, sub, sub.customer_id)
        for sub in ctx.snapshot.subscriptions
        if sub.status == "paused" and sub.customer_id
    ]


def _paused_finding(ctx: RuleContext, sub: Subscription, customer_id: str) -> Finding:
    mrr = sub.monthly_amount_minor
    verify = ctx.verify_contract(sub)
    return Finding(
        kind="churn_signal",
        classification="failed_payment",
        severity=severity_for_mrr(mrr, ctx.config, floor="medium", currency=sub.currency),
        customer_id=customer_id,
        subjects=(sub.id,),
        evidence=evidence_of(sub.event_id),
        revenue_impact=RevenueImpact(sub.currency, 0, mrr),
        recommended_action=RecommendedAction(
            type="send_portal_link",
            target=customer_id,
            reversible=True,
            steps=with_contract_check(
                (
                    "Send the customer a billing portal link to add a payment method",
                    "Once a payment method is on file, resume the subscription (Dashboard or "
                    "POST /v1/subscriptions/{id}/resume): it does not bill while paused",
                    "Do not cancel it: the customer may simply have missed the trial's end",
                    "Document the outreach on the case",
                ),
                verify,
            ),
        ),
        reasoning=(
            f"Subscription {sub.id} ({format_money(mrr, sub.currency)}/month) was paused when "
            f"its trial ended ({format_time(sub.trial_end)}) without a payment method, so it "
            "bills nothing until the customer adds one and it is resumed."
        ),
        question=None,
        verify_contract=verify,
        product_gaps=(),
        signals=("paused_trial_ended_without_payment_method",),
        auto_clear=True,
    )
