"""Failed renewals: an existing subscriber whose recurring payment did not go through.

The safe move is to let the customer fix the card (portal link) while Stripe keeps retrying;
cancelling or refunding would turn a recoverable payment into churn.
"""

from __future__ import annotations

from rules.context import RuleContext
from rules.findings import (
    Finding,
    RecommendedAction,
    RevenueImpact,
    evidence_of,
    max_severity,
    severity_for_mrr,
    with_contract_check,
)
from rules.formatting import format_money, format_time
from rules.model import Invoice, Subscription

# Invoices that bill an existing subscription (``subscription`` is the pre-2018 name of a cycle).
RENEWAL_BILLING_REASONS = frozenset(
    {"subscription_cycle", "subscription", "subscription_update", "subscription_threshold"}
)
DUNNING_STATUSES = frozenset({"past_due", "unpaid"})


def _is_failed_renewal(invoice: Invoice) -> bool:
    return (
        invoice.billing_reason in RENEWAL_BILLING_REASONS
        and invoice.status == "open"
        and invoice.attempt_count >= 1
        and invoice.amount_remaining > 0
    )


def find_failed_renewals(ctx: RuleContext) -> list[Finding]:
    """Open renewal invoices that failed at least once, and past_due/unpaid subs without one."""
    findings: list[Finding] = []
    covered: set[str] = set()
    for invoice in ctx.snapshot.invoices:
        if not _is_failed_renewal(invoice):
            continue
        sub = ctx.snapshot.subscription(invoice.subscription_id)
        customer_id = invoice.customer_id or (sub.customer_id if sub else None)
        if customer_id is None:
            continue
        if sub is not None:
            covered.add(sub.id)
        findings.append(_invoice_finding(ctx, invoice, sub, customer_id))
    for sub in ctx.snapshot.subscriptions:
        if sub.status in DUNNING_STATUSES and sub.id not in covered and sub.customer_id:
            findings.append(_subscription_finding(ctx, sub, sub.customer_id))
    return findings


def _steps(verify: bool, retry: str) -> tuple[str, ...]:
    return with_contract_check(
        (
            "Send the customer a billing portal link (or the hosted invoice link) to update "
            "their payment method",
            retry,
            "Do not cancel or refund: the subscription is still wanted until proven otherwise",
            "Document the outreach on the case",
            "Follow up after the next payment attempt",
        ),
        verify,
    )


def _invoice_finding(
    ctx: RuleContext, invoice: Invoice, sub: Subscription | None, customer_id: str
) -> Finding:
    mrr = sub.monthly_amount_minor if sub else 0
    exhausted = invoice.next_payment_attempt is None
    floor = (
        "high"
        if exhausted or invoice.attempt_count >= ctx.config.failed_renewal_high_attempts
        else "medium"
    )
    retry = (
        f"Let Stripe retry as scheduled (next attempt {format_time(invoice.next_payment_attempt)})"
        if not exhausted
        else "Stripe has no retry scheduled: retry the payment once the card is updated"
    )
    verify = ctx.verify_contract(sub) or invoice.billing_reason == "subscription_update"
    signals = ["renewal_payment_failed"]
    if sub is not None and sub.status in DUNNING_STATUSES:
        signals.append(sub.status)
    if exhausted:
        signals.append("retries_exhausted")
    if invoice.billing_reason == "subscription_update":
        signals.append("prorated")
    return Finding(
        kind="failed_renewal",
        classification="failed_payment",
        severity=severity_for_mrr(mrr, ctx.config, floor=floor, currency=invoice.currency),
        customer_id=customer_id,
        subjects=(invoice.id, *((sub.id,) if sub else ())),
        evidence=evidence_of(invoice.event_id, sub.event_id if sub else None),
        revenue_impact=RevenueImpact(invoice.currency, invoice.amount_remaining, mrr),
        recommended_action=RecommendedAction(
            type="send_portal_link",
            target=customer_id,
            reversible=True,
            steps=_steps(verify, retry),
        ),
        reasoning=_renewal_reasoning(invoice, exhausted),
        question=None,
        verify_contract=verify,
        product_gaps=("no_dunning_emails",) if invoice.attempt_count >= 2 else (),
        signals=tuple(signals),
        auto_clear=True,
    )


def _renewal_reasoning(invoice: Invoice, exhausted: bool) -> str:
    money = format_money(invoice.amount_remaining, invoice.currency)
    next_attempt = "not scheduled" if exhausted else format_time(invoice.next_payment_attempt)
    return (
        f"Renewal invoice {invoice.id} ({money}) failed after {invoice.attempt_count} "
        f"attempt(s) with the next attempt {next_attempt}, so a portal link lets the customer "
        "fix the card before retries run out."
    )


def _subscription_finding(ctx: RuleContext, sub: Subscription, customer_id: str) -> Finding:
    mrr = sub.monthly_amount_minor
    latest = ctx.snapshot.invoice(sub.latest_invoice_id)
    attempts = latest.attempt_count if latest else 0
    next_attempt = latest.next_payment_attempt if latest else None
    return Finding(
        kind="failed_renewal",
        classification="failed_payment",
        severity=severity_for_mrr(
            mrr,
            ctx.config,
            floor=max_severity("medium", "high" if sub.status == "unpaid" else "low"),
            currency=sub.currency,
        ),
        customer_id=customer_id,
        subjects=(sub.id,),
        evidence=evidence_of(sub.event_id, latest.event_id if latest else None),
        revenue_impact=RevenueImpact(sub.currency, latest.amount_remaining if latest else 0, mrr),
        recommended_action=RecommendedAction(
            type="send_portal_link",
            target=customer_id,
            reversible=True,
            steps=_steps(ctx.verify_contract(sub), "Let Stripe's retry schedule continue"),
        ),
        reasoning=(
            f"Subscription {sub.id} is {sub.status} (latest invoice attempt_count {attempts}, "
            f"next_payment_attempt {format_time(next_attempt)}), so a portal link lets the "
            "customer update the card before the subscription is lost."
        ),
        question=None,
        verify_contract=ctx.verify_contract(sub),
        product_gaps=(),
        signals=(sub.status or "past_due",),
        auto_clear=True,
    )
