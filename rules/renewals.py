"""Failed renewals: an existing subscriber whose recurring payment did not go through.

What to advise depends on what Stripe will do next, read from the invoice and the decline:

- ``collection_method=send_invoice``: Stripe never charges the invoice; the customer pays it on
  the hosted invoice page, and ``next_payment_attempt`` is always null — that is not "retries
  exhausted" (API reference, Invoice object: next_payment_attempt, collection_method).
- ``invoice.payment_action_required`` / decline ``authentication_required``: the customer has to
  authenticate (3-D Secure) on the hosted invoice page; Stripe does not retry it on its own
  (support.stripe.com, "Subscription retries for failed 3D Secure authorizations").
- a hard decline (``rules.declines``): Stripe does not retry it; the customer pays the open
  invoice with another card on the hosted invoice page.
- an ``unpaid`` subscription, or no retry scheduled on a charge_automatically invoice: retries
  are over, the invoice stays open (or ``uncollectible``) and updating the card alone does not
  pay it — the customer pays it on the hosted invoice page ("Automate payment retries",
  https://docs.stripe.com/billing/revenue-recovery/smart-retries; subscription statuses in
  https://docs.stripe.com/billing/subscriptions/overview).
- an ``uncollectible`` invoice is written off but can still be paid or voided ("How invoicing
  works", https://docs.stripe.com/invoicing/overview), so it stays a failed renewal.
- a ``canceled`` subscription: "By default, upon subscription cancellation, Stripe stops
  automatic collection of all finalized invoices for the customer" (API reference, "Cancel a
  subscription", https://docs.stripe.com/api/subscriptions/cancel), so the open invoice is
  owed but never retried: collect it with the hosted invoice link, or void it.
- otherwise (a soft decline with a retry scheduled) a portal link lets the customer fix the card
  before Stripe's next attempt.

Cancelling or refunding would turn a recoverable payment into churn, so neither is advised.
"""

from __future__ import annotations

from dataclasses import dataclass

from rules.context import RuleContext
from rules.declines import Decline, read_decline
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
# Invoice states in which money is still owed and can still be paid.
PAYABLE_INVOICE_STATUSES = frozenset({"open", "uncollectible"})
SEND_INVOICE = "send_invoice"

PORTAL_STEP = (
    "Send the customer a billing portal link to update their payment method before Stripe's "
    "next attempt"
)
INVOICE_STEP = (
    "Send the customer the hosted invoice link: they pay the open invoice there "
    "(with a new card if needed); updating the card alone does not pay it"
)
AUTHENTICATE_STEP = (
    "Send the customer the hosted invoice link: they complete the 3-D Secure authentication "
    "there (Stripe does not retry a payment that needs authentication)"
)


@dataclass(frozen=True, slots=True)
class Collection:
    """What Stripe will do next with a failed renewal, and so what the customer must do."""

    action_type: str  # send_portal_link | send_invoice_link
    first_step: str
    retry_step: str
    retries_left: bool
    signals: tuple[str, ...]
    because: str


def read_collection(invoice: Invoice, sub: Subscription | None, decline: Decline) -> Collection:
    """The collection situation of a failed renewal invoice (see the module docstring)."""
    code = decline.code or "unknown"
    if sub is not None and sub.status == "canceled":
        return Collection(
            "send_invoice_link",
            "Ask the customer whether they will pay the open invoice (hosted invoice link) or "
            "void it: the subscription was canceled, so Stripe stopped collecting it",
            "Stripe does not retry an invoice of a canceled subscription",
            False,
            ("subscription_canceled",),
            "the subscription was canceled, which stopped Stripe's automatic collection",
        )
    if invoice.collection_method == SEND_INVOICE:
        return Collection(
            "send_invoice_link",
            "Send the customer the hosted invoice link (send_invoice: Stripe never charges "
            "this invoice automatically)",
            "Check the invoice's due date and remind the customer before it",
            False,
            ("send_invoice",),
            "the invoice is paid by the customer (collection_method send_invoice)",
        )
    if decline.needs_authentication:
        return Collection(
            "send_invoice_link",
            AUTHENTICATE_STEP,
            "Do not retry the charge: it needs the customer's authentication",
            False,
            ("authentication_required",),
            "the payment needs the customer's 3-D Secure authentication",
        )
    if decline.hard:
        return Collection(
            "send_invoice_link",
            INVOICE_STEP,
            f"Do not retry the same card: the decline ({code}) is one Stripe does not retry",
            False,
            ("hard_decline", f"decline:{code}"),
            f"the card was declined with {code}, which retrying cannot fix",
        )
    decline_signal = (f"decline:{decline.code}",) if decline.code else ()
    if invoice.status == "uncollectible":
        return Collection(
            "send_invoice_link",
            INVOICE_STEP,
            "Stripe no longer retries an uncollectible invoice: it can still be paid or voided",
            False,
            ("uncollectible", *decline_signal),
            "the invoice was marked uncollectible but is still owed",
        )
    if (sub is not None and sub.status == "unpaid") or invoice.next_payment_attempt is None:
        return Collection(
            "send_invoice_link",
            INVOICE_STEP,
            "Stripe has stopped retrying: the invoice stays open until it is paid",
            False,
            ("retries_exhausted", *decline_signal),
            "Stripe's retries are over",
        )
    return Collection(
        "send_portal_link",
        PORTAL_STEP,
        f"Let Stripe retry as scheduled (next attempt {format_time(invoice.next_payment_attempt)})",
        True,
        decline_signal,
        f"Stripe retries on {format_time(invoice.next_payment_attempt)}",
    )


def _is_failed_renewal(invoice: Invoice, billing_reason: str | None) -> bool:
    if billing_reason not in RENEWAL_BILLING_REASONS or invoice.amount_remaining <= 0:
        return False
    if invoice.status == "uncollectible":
        return True
    return invoice.status == "open" and (invoice.attempt_count >= 1 or invoice.requires_action)


def find_failed_renewals(ctx: RuleContext) -> list[Finding]:
    """Open or uncollectible renewal invoices that failed, and past_due/unpaid subs without one."""
    findings: list[Finding] = []
    covered: set[str] = set()
    for invoice in ctx.snapshot.invoices:
        if invoice.status == "draft" and invoice.finalization_error and invoice.customer_id:
            findings.append(_finalization_finding(ctx, invoice, invoice.customer_id))
            continue
        if not _is_failed_renewal(invoice, ctx.billing_reason(invoice)):
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


KEEP_STEP = "Do not cancel or refund: the subscription is still wanted until proven otherwise"
CANCELED_STEP = "Do not reactivate the subscription or refund anything unasked"


def _steps(verify: bool, first: str, retry: str, keep: str = KEEP_STEP) -> tuple[str, ...]:
    return with_contract_check(
        (
            first,
            retry,
            keep,
            "Document the outreach on the case",
            "Follow up once the customer has acted (or after the next payment attempt)",
        ),
        verify,
    )


def _invoice_finding(
    ctx: RuleContext, invoice: Invoice, sub: Subscription | None, customer_id: str
) -> Finding:
    mrr = sub.monthly_amount_minor if sub else 0
    decline = read_decline(ctx.snapshot, invoice)
    collection = read_collection(invoice, sub, decline)
    no_retry = not collection.retries_left and invoice.collection_method != SEND_INVOICE
    floor = (
        "high"
        if no_retry or invoice.attempt_count >= ctx.config.failed_renewal_high_attempts
        else "medium"
    )
    reason = ctx.billing_reason(invoice)
    verify = ctx.verify_contract(sub) or reason == "subscription_update"
    signals = ["renewal_payment_failed"]
    if sub is not None and sub.status in DUNNING_STATUSES:
        signals.append(sub.status)
    signals += collection.signals
    if reason == "subscription_update":
        signals.append("prorated")
    if reason != invoice.billing_reason:
        signals.append(f"billing_reason_derived:{reason}")
    return Finding(
        kind="failed_renewal",
        classification="failed_payment",
        severity=severity_for_mrr(mrr, ctx.config, floor=floor, currency=invoice.currency),
        customer_id=customer_id,
        subjects=(invoice.id, *((sub.id,) if sub else ())),
        evidence=evidence_of(invoice.event_id, sub.event_id if sub else None, decline.evidence),
        revenue_impact=RevenueImpact(invoice.currency, invoice.amount_remaining, mrr),
        recommended_action=RecommendedAction(
            type=collection.action_type,
            target=customer_id,
            reversible=True,
            steps=_steps(
                verify,
                collection.first_step,
                collection.retry_step,
                CANCELED_STEP if sub is not None and sub.status == "canceled" else KEEP_STEP,
            ),
        ),
        reasoning=_renewal_reasoning(invoice, collection),
        question=None,
        verify_contract=verify,
        product_gaps=("no_dunning_emails",) if invoice.attempt_count >= 2 else (),
        signals=tuple(signals),
        auto_clear=True,
    )


def _finalization_finding(ctx: RuleContext, invoice: Invoice, customer_id: str) -> Finding:
    """invoice.finalization_failed: the invoice stays a draft and Stripe cannot charge it until
    the cause in ``last_finalization_error`` is fixed (e.g. customer_tax_location_invalid with
    automatic tax; API reference, Invoice object: last_finalization_error)."""
    sub = ctx.snapshot.subscription(invoice.subscription_id)
    mrr = sub.monthly_amount_minor if sub else 0
    cause = invoice.finalization_error or "unknown"
    return Finding(
        kind="failed_renewal",
        classification="failed_payment",
        severity=severity_for_mrr(mrr, ctx.config, floor="high", currency=invoice.currency),
        customer_id=customer_id,
        subjects=(invoice.id, *((sub.id,) if sub else ())),
        evidence=evidence_of(invoice.event_id),
        revenue_impact=RevenueImpact(invoice.currency, invoice.amount_due, mrr),
        recommended_action=RecommendedAction(
            type="contact_customer",
            target=customer_id,
            reversible=True,
            steps=with_contract_check(
                (
                    f"Fix what stopped finalization ({cause}): e.g. ask the customer for a "
                    "valid billing address when automatic tax cannot locate them",
                    "Then finalize the invoice so Stripe can collect it; a draft is never charged",
                    "Do not cancel or refund: nothing was charged yet",
                    "Document the fix on the case",
                ),
                ctx.verify_contract(sub),
            ),
        ),
        reasoning=(
            f"Invoice {invoice.id} ({format_money(invoice.amount_due, invoice.currency)}) could "
            f"not be finalized ({cause}), so it stays a draft that no one pays until the cause "
            "is fixed."
        ),
        question=None,
        verify_contract=ctx.verify_contract(sub),
        product_gaps=(),
        signals=("finalization_failed", f"finalization_error:{cause}"),
        auto_clear=True,
    )


def _renewal_reasoning(invoice: Invoice, collection: Collection) -> str:
    money = format_money(invoice.amount_remaining, invoice.currency)
    link = "a portal link" if collection.action_type == "send_portal_link" else "the invoice link"
    return (
        f"Renewal invoice {invoice.id} ({money}) is {invoice.status} after "
        f"{invoice.attempt_count} failed attempt(s) and {collection.because}, so {link} is the "
        "customer's way to pay it."
    )


def _subscription_finding(ctx: RuleContext, sub: Subscription, customer_id: str) -> Finding:
    mrr = sub.monthly_amount_minor
    latest = ctx.snapshot.invoice(sub.latest_invoice_id)
    attempts = latest.attempt_count if latest else 0
    next_attempt = latest.next_payment_attempt if latest else None
    unpaid = sub.status == "unpaid"
    if unpaid:
        action, first = "send_invoice_link", INVOICE_STEP
        retry = "Stripe no longer retries an unpaid subscription's invoice"
    else:
        action, first = "send_portal_link", PORTAL_STEP
        retry = "Check the latest invoice's next payment attempt before following up"
    return Finding(
        kind="failed_renewal",
        classification="failed_payment",
        severity=severity_for_mrr(
            mrr,
            ctx.config,
            floor=max_severity("medium", "high" if unpaid else "low"),
            currency=sub.currency,
        ),
        customer_id=customer_id,
        # Keyed on the invoice the subscription names as its latest when it names one: that is
        # the invoice whose payment failed ("past_due": payment on the latest finalized invoice
        # failed; API reference, Subscription object, ``status``), so when its own events arrive
        # after the subscription's (Stripe does not deliver in order: "Webhooks",
        # docs.stripe.com/webhooks#event-ordering) the invoice's finding updates this case
        # instead of resolving it and opening a second one.
        subjects=(*((sub.latest_invoice_id,) if sub.latest_invoice_id else ()), sub.id),
        evidence=evidence_of(sub.event_id, latest.event_id if latest else None),
        revenue_impact=RevenueImpact(sub.currency, latest.amount_remaining if latest else 0, mrr),
        recommended_action=RecommendedAction(
            type=action,
            target=customer_id,
            reversible=True,
            steps=_steps(ctx.verify_contract(sub), first, retry),
        ),
        reasoning=(
            f"Subscription {sub.id} is {sub.status} (latest invoice attempt_count {attempts}, "
            f"next_payment_attempt {format_time(next_attempt)}), so "
            + (
                "the customer has to pay the open invoice before the subscription is lost."
                if unpaid
                else "a portal link lets the customer update the card before it is lost."
            )
        ),
        question=None,
        verify_contract=ctx.verify_contract(sub),
        product_gaps=(),
        signals=(sub.status or "past_due",),
        auto_clear=True,
    )
