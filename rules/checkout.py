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
from rules.model import CheckoutSession, Invoice, Subscription

#: A subscription ended in one of these before its first invoice was paid never started.
_ENDED_BEFORE_FIRST_PAYMENT = frozenset({"incomplete_expired", "canceled"})


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


def unpaid_first_invoice(ctx: RuleContext, sub: Subscription) -> Invoice | None:
    """The first invoice of a ``canceled`` subscription when that invoice was never paid and
    nothing shows the subscription started: it was canceled before it started (an incomplete
    subscription can be canceled; API reference, Subscription object, ``status``). The first
    invoice is the one ``RuleContext.billing_reason`` reads as ``subscription_create``, in any
    API version.

    Only positive evidence of non-payment counts: the first invoice's payment may simply not
    have been delivered yet (Stripe does not deliver events in the order it generated them;
    "Webhooks", docs.stripe.com/webhooks#event-ordering), so any sign that the subscription
    got past its first invoice (``started``) rules the conclusion out."""
    if sub.status != "canceled":
        return None
    invoices = ctx.invoices_of(sub.id)
    if started(sub, invoices) or started(ctx.snapshot.subscription(sub.id), invoices):
        return None
    first = next((i for i in invoices if ctx.billing_reason(i) == "subscription_create"), None)
    return first if first is not None and first.amount_due > 0 else None


def started(sub: Subscription | None, invoices: tuple[Invoice, ...]) -> bool:
    """True when the subscription got past its first invoice: one of its invoices is paid, or
    it has more than one invoice (those known, and every ``latest_invoice`` its snapshots
    named, ``Subscription.invoice_ids_named``). An ``incomplete`` subscription can only have
    its metadata and payment source updated until its first invoice is paid, and an
    ``incomplete_expired`` one generates no further invoices (API reference, Subscription
    object, ``status``), so a second invoice means the first was paid, even while that
    payment's event is still on its way."""
    if any(i.status == "paid" for i in invoices):
        return True
    named = sub.invoice_ids_named if sub is not None else frozenset()
    return len({i.id for i in invoices} | named) > 1


def _subscription_finding(ctx: RuleContext, sub: Subscription) -> Finding | None:
    """A subscription whose first payment never completed: ``incomplete_expired``, or
    ``canceled`` while its first invoice was still unpaid (``unpaid_first_invoice``).

    An ``incomplete`` subscription is not flagged: Stripe gives its first invoice 23 hours,
    then moves it to ``incomplete_expired`` and voids the invoice (API reference, Subscription
    object, ``status``), so "stuck for days" never happens and the expired state is the case.
    """
    if sub.customer_id is None or sub.status not in _ENDED_BEFORE_FIRST_PAYMENT:
        return None
    first = unpaid_first_invoice(ctx, sub)
    if sub.status == "canceled" and first is None:
        return None
    person = ctx.person(sub.customer_id)
    customer = ctx.customer(sub.customer_id)
    email = customer.email if customer else None
    if _succeeded_later(ctx, person, email, sub.created or 0):
        return None
    invoice = first or ctx.snapshot.invoice(sub.latest_invoice_id)
    amount = invoice.amount_remaining if invoice else 0
    currency = invoice.currency if invoice else sub.currency
    ended = "expired" if sub.status == "incomplete_expired" else "was canceled"
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
            f"Subscription {sub.id} {ended} before its first payment "
            f"({format_money(amount, currency)}) completed and no later subscription exists, "
            "so the customer needs a new checkout link, not a refund."
        ),
        question=None,
        verify_contract=False,
        product_gaps=(),
        signals=(sub.status if sub.status == "incomplete_expired" else "canceled_before_payment",),
        auto_clear=True,
    )


def _session_finding(ctx: RuleContext, session: CheckoutSession) -> Finding | None:
    """An expired session, or a completed one whose delayed payment failed or never settled.

    Bank debits (SEPA, ACH, Bacs…) complete the session with ``payment_status=unpaid`` and
    report later: ``checkout.session.async_payment_succeeded`` or ``…async_payment_failed``
    ("Fulfill orders", https://docs.stripe.com/checkout/fulfillment). Only the failure event is
    a failure; an unpaid session is flagged only past ``async_payment_settle_seconds``.
    """
    expired = session.status == "expired"
    complete_unpaid = session.status == "complete" and session.payment_status == "unpaid"
    failed = complete_unpaid and session.async_payment_failed
    if not (expired or complete_unpaid):
        return None
    created = session.created or 0
    if (
        complete_unpaid
        and not failed
        and ctx.as_of - created <= ctx.config.async_payment_settle_seconds
    ):
        return None  # a bank debit may still be settling
    person = ctx.person(session.customer_id) or ctx.person_by_email(session.customer_email)
    if _succeeded_later(ctx, person, session.customer_email, created):
        return None
    customer_id = session.customer_id or person
    if customer_id is None:
        return None  # an anonymous abandoned cart: no customer to open a case for
    money = format_money(session.amount_total or 0, session.currency)
    if expired:
        first = (
            "Contact the customer with a new checkout link "
            f"(the {session.mode or 'checkout'} session expired at "
            f"{format_time(session.expires_at)})"
        )
        what, signal = "expired", "checkout_expired"
    elif failed:
        first = (
            "Contact the customer: their bank debit failed (async_payment_failed); offer a new "
            "checkout link or another payment method, and do not fulfil the order"
        )
        what, signal = "completed but its bank debit failed", "async_payment_failed"
    else:
        first = (
            "Check the payment in the Dashboard: the bank debit has not settled in "
            f"{ctx.config.async_payment_settle_seconds // 86_400} days"
        )
        what, signal = "completed without the payment settling", "async_payment_unpaid"
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
                first,
                "Nothing to refund: no payment was taken",
                "Document the outreach on the case",
            ),
        ),
        reasoning=(
            f"Checkout {session.id} for {money} {what} and the same person has not paid since, "
            "so a personal nudge with a fresh link is the safe next step."
        ),
        question=None,
        verify_contract=False,
        product_gaps=("no_checkout_recovery",) if expired else (),
        signals=(signal,),
        auto_clear=True,
    )
