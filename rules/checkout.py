"""Incomplete checkouts: a first payment that never completed.

These are people who tried to pay; each finding holds only while nothing later shows the person
succeeded (a completed checkout or a live subscription), so a retry that worked clears it.
"""

from __future__ import annotations

from rules.context import RuleContext
from rules.findings import (
    Finding,
    RecommendedAction,
    RevenueImpact,
    evidence_of,
)
from rules.formatting import format_money, format_time
from rules.model import CheckoutSession, Subscription


def _succeeded_later(ctx: RuleContext, person: str | None, email: str | None, since: int) -> bool:
    """True when the same person completed a checkout or holds a live subscription since then."""
    for session in ctx.snapshot.checkout_sessions:
        same = (person is not None and ctx.person(session.customer_id) == person) or (
            email is not None and session.customer_email == email
        )
        if (
            same
            and session.status == "complete"
            and session.payment_status in ("paid", "no_payment_required")
            and (session.created or 0) >= since
        ):
            return True
    return any(
        sub.is_live
        and person is not None
        and ctx.person(sub.customer_id) == person
        and (sub.created or 0) >= since
        for sub in ctx.snapshot.subscriptions
    )


def find_incomplete_checkouts(ctx: RuleContext) -> list[Finding]:
    """Expired/abandoned first payments with no later success for the same person."""
    findings = [f for s in ctx.snapshot.subscriptions if (f := _subscription_finding(ctx, s))]
    findings += [f for s in ctx.snapshot.checkout_sessions if (f := _session_finding(ctx, s))]
    return findings


def _subscription_finding(ctx: RuleContext, sub: Subscription) -> Finding | None:
    if sub.customer_id is None or sub.status not in ("incomplete", "incomplete_expired"):
        return None
    person = ctx.person(sub.customer_id)
    customer = ctx.customer(sub.customer_id)
    email = customer.email if customer else None
    if _succeeded_later(ctx, person, email, sub.created or 0):
        return None
    invoice = ctx.snapshot.invoice(sub.latest_invoice_id)
    amount = invoice.amount_remaining if invoice else 0
    currency = invoice.currency if invoice else sub.currency
    if sub.status == "incomplete":
        since = (invoice.created if invoice else None) or sub.created or ctx.as_of
        waited = ctx.as_of - since
        first_invoice_waiting = invoice is None or (
            invoice.billing_reason == "subscription_create" and invoice.status == "open"
        )
        if not first_invoice_waiting or waited <= ctx.config.stale_action_required_seconds:
            return None
        return Finding(
            kind="incomplete_checkout",
            classification="failed_payment",
            severity="medium",
            customer_id=sub.customer_id,
            subjects=(sub.id, *((invoice.id,) if invoice else ())),
            evidence=evidence_of(sub.event_id, invoice.event_id if invoice else None),
            revenue_impact=RevenueImpact(currency, amount, sub.monthly_amount_minor),
            recommended_action=RecommendedAction(
                type="send_portal_link",
                target=sub.customer_id,
                reversible=True,
                steps=(
                    "Send the customer the hosted invoice link so they can complete the "
                    "payment (e.g. 3-D Secure authentication)",
                    "Do not recreate the subscription while this one can still be paid",
                    "Document the outreach on the case",
                    "Follow up before Stripe expires the subscription",
                ),
            ),
            reasoning=(
                f"Subscription {sub.id}'s first payment has waited for the customer "
                f"{waited // 3600} h since {format_time(since)}, so sending the payment link is "
                "the only way to complete it."
            ),
            question=None,
            verify_contract=False,
            product_gaps=(),
            signals=("payment_action_required", "first_payment_incomplete"),
            auto_clear=True,
        )
    return Finding(
        kind="incomplete_checkout",
        classification="failed_payment",
        severity="low",
        customer_id=sub.customer_id,
        subjects=(sub.id, *((invoice.id,) if invoice else ())),
        evidence=evidence_of(sub.event_id, invoice.event_id if invoice else None),
        revenue_impact=RevenueImpact(currency, 0, sub.monthly_amount_minor),
        recommended_action=RecommendedAction(
            type="contact_customer",
            target=sub.customer_id,
            reversible=True,
            steps=(
                "Contact the customer with a fresh checkout link (the expired subscription "
                "cannot be paid any more)",
                "Nothing to refund: no payment was taken",
                "Document the outreach on the case",
                "Follow up once if there is no answer",
            ),
        ),
        reasoning=(
            f"Subscription {sub.id} expired before its first payment "
            f"({format_money(amount, currency)}) completed and no later subscription exists, "
            "so the customer needs a new checkout link, not a refund."
        ),
        question=None,
        verify_contract=False,
        product_gaps=(),
        signals=("incomplete_expired",),
        auto_clear=True,
    )


def _session_finding(ctx: RuleContext, session: CheckoutSession) -> Finding | None:
    expired = session.status == "expired"
    unpaid = session.status == "complete" and session.payment_status == "unpaid"
    if not (expired or unpaid):
        return None
    created = session.created or 0
    if unpaid and ctx.as_of - created <= ctx.config.stale_action_required_seconds:
        return None  # an async payment (bank debit) may still be settling
    person = ctx.person(session.customer_id) or ctx.person_by_email(session.customer_email)
    if _succeeded_later(ctx, person, session.customer_email, created):
        return None
    customer_id = session.customer_id or person
    if customer_id is None:
        return None  # an anonymous abandoned cart: no customer to open a case for
    money = format_money(session.amount_total or 0, session.currency)
    return Finding(
        kind="incomplete_checkout",
        classification="failed_payment",
        severity="low",
        customer_id=customer_id,
        subjects=(session.id, *((session.subscription_id,) if session.subscription_id else ())),
        evidence=evidence_of(session.event_id),
        revenue_impact=RevenueImpact(session.currency, 0, 0),
        recommended_action=RecommendedAction(
            type="contact_customer",
            target=customer_id,
            reversible=True,
            steps=(
                "Contact the customer with a new checkout link "
                f"(the {session.mode or 'checkout'} session expired at "
                f"{format_time(session.expires_at)})"
                if expired
                else "Contact the customer: their asynchronous payment did not settle",
                "Nothing to refund: no payment was taken",
                "Document the outreach on the case",
            ),
        ),
        reasoning=(
            f"Checkout {session.id} for {money} "
            f"{'expired' if expired else 'completed without payment'} and the same person has "
            "not paid since, so a personal nudge with a fresh link is the safe next step."
        ),
        question=None,
        verify_contract=False,
        product_gaps=("no_checkout_recovery",) if expired else (),
        signals=("checkout_expired",) if expired else ("async_payment_unpaid",),
        auto_clear=True,
    )
