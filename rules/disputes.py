"""Disputes: a chargeback (the bank took the money back) or an inquiry (it only asks).

Stripe, "Disputes and fraud" (docs.stripe.com/disputes, "Inquiries and retrievals"): an inquiry
or retrieval (``warning_needs_response``, ``warning_under_review``) withdraws no funds and the
payment can still be refunded, which closes it with no dispute fee; so for an inquiry the
cheapest resolution is usually a full refund. A chargeback (``needs_response``,
``under_review``) has already taken the money: refunding it would pay the cardholder twice.
Statuses are those of the Dispute object reference, ``prevented`` included (API 2025-08-27,
changelog "Adds support for Dispute Preventions"): closed ones open no case.
"""

from __future__ import annotations

from rules.context import RuleContext
from rules.deadlines import read_evidence_deadline
from rules.findings import (
    Finding,
    RecommendedAction,
    RevenueImpact,
    evidence_of,
    with_contract_check,
)
from rules.formatting import format_money, format_time
from rules.model import OPEN_DISPUTE_STATUSES, Charge, Dispute, Invoice, Subscription

# reason -> (classification, product gaps, what it means in plain words)
_BY_REASON: dict[str, tuple[str, tuple[str, ...], str]] = {
    "subscription_canceled": (
        "missing_self_serve",
        ("no_cancel_flow",),
        "the customer believes they canceled, so they could not stop billing themselves",
    ),
    "duplicate": (
        "accidental_duplicate",
        ("no_duplicate_guard",),
        "the customer says they were charged twice",
    ),
    "product_not_received": (
        "product_failure",
        (),
        "the customer says they never received what they paid for",
    ),
    "product_unacceptable": (
        "product_failure",
        (),
        "the customer says the product was not as described",
    ),
    "credit_not_processed": (
        "product_failure",
        ("no_refund_tracking",),
        "a refund was promised, not made (a trust break)",
    ),
    # Stripe, "Dispute reason code categories" (docs.stripe.com/disputes/categories):
    # fraudulent means the cardholder says they did not authorise the payment: a stolen card
    # or a customer who does not recognise us; neither is a product failure, and only the
    # account's history can tell them apart, so it stays unclassified with that question.
    "fraudulent": (
        "unclassified",
        (),
        "the cardholder says they did not authorise the payment (a stolen card, or a customer "
        "who does not recognise the charge)",
    ),
    "unrecognized": (
        "product_failure",
        ("unclear_statement_descriptor",),
        "the cardholder does not recognise the charge (a trust break)",
    ),
}


_FRAUD_QUESTION = (
    "Does the cardholder know us (logins, usage or emails from this customer after the charge), "
    "or is this a stolen card with no relationship to the account?"
)


def find_disputes(ctx: RuleContext) -> list[Finding]:
    """One finding per open dispute, even when the charge or the customer is unknown."""
    findings = []
    customer_ids = sorted({c.id for c in ctx.snapshot.customers})
    for dispute in ctx.snapshot.disputes:
        if dispute.status not in OPEN_DISPUTE_STATUSES:
            continue
        charge = ctx.snapshot.charge(dispute.charge_id)
        customer_id = (charge.customer_id if charge else None) or dispute.customer_id
        if customer_id is None and len(customer_ids) == 1:
            customer_id = customer_ids[0]  # the snapshot is one person's: it is theirs
        # A dispute on a charge billing-ops never saw still needs an answer before its
        # deadline: the case opens without a customer, and says where to find them.
        findings.append(_dispute_finding(ctx, dispute, charge, customer_id or ""))
    return findings


def _paying_subscription(
    ctx: RuleContext, charge_id: str | None, charge: Charge | None
) -> tuple[Invoice | None, Subscription | None]:
    """The invoice a charge paid (by id, invoice link or payment intent) and its subscription."""
    invoice = next(
        (
            i
            for i in ctx.snapshot.invoices
            if charge_id
            and (
                i.charge_id == charge_id
                or (charge is not None and i.id == charge.invoice_id)
                or (
                    charge is not None
                    and charge.payment_intent_id
                    and i.payment_intent_id == charge.payment_intent_id
                )
            )
        ),
        None,
    )
    sub = ctx.snapshot.subscription(invoice.subscription_id) if invoice else None
    return invoice, sub


def _dispute_finding(
    ctx: RuleContext, dispute: Dispute, charge: Charge | None, customer_id: str
) -> Finding:
    invoice, sub = _paying_subscription(ctx, dispute.charge_id, charge)
    classification, gaps, meaning = _BY_REASON.get(
        dispute.reason or "", ("unclassified", (), f"the reason given is {dispute.reason!r}")
    )
    if classification != "unclassified":
        question = None
    elif dispute.reason == "fraudulent":
        question = _FRAUD_QUESTION
    else:
        question = (
            "What did the customer tell their bank, and did they contact us before disputing?"
        )
    money = format_money(dispute.amount, dispute.currency)
    charge_name = dispute.charge_id or "the disputed charge"
    due = format_time(dispute.evidence_due_by)
    inquiry = dispute.is_inquiry and not dispute.blocks_refund
    already_refunded = charge is not None and (charge.refunded or charge.amount_refunded > 0)
    steps: list[str] = []
    if not customer_id:
        steps.append(
            f"Find the customer: billing-ops has not seen {charge_name}; open it in the Stripe "
            "dashboard to see who paid"
        )
    if inquiry:
        steps.append(
            f"{dispute.id} is an inquiry ({dispute.status}), not a chargeback: no money has "
            f"left the account and {charge_name} can still be refunded"
        )
        if already_refunded:
            steps.append(
                f"{charge_name} already has a refund: tell the issuer through {dispute.id} "
                f"before {due}, do not refund again"
            )
        else:
            steps.append(
                f"Cheapest resolution: refund {charge_name} in full ({money}); that closes the "
                "inquiry with no dispute fee"
            )
            steps.append(
                f"Only if the charge is clearly right and worth defending: submit evidence to "
                f"{dispute.id} before {due} instead of refunding"
            )
    else:
        steps.append(
            f"Do not refund {charge_name}: the bank already took {money} back, a refund would "
            "pay it twice"
        )
        if dispute.reason == "duplicate":
            steps.append(
                f"If {charge_name} really repeats another payment, accept the dispute (the bank "
                "returns it once) and refund nothing else"
            )
        steps.append(f"Gather evidence and respond to {dispute.id} before {due}")
    deadline = read_evidence_deadline(dispute, ctx.as_of)
    if deadline.step:
        steps.append(deadline.step)
    if dispute.reason == "subscription_canceled" and sub is not None and sub.is_live:
        steps.append(f"Stop future charges: cancel {sub.id} at period end if the customer wants")
    if dispute.reason == "fraudulent" and sub is not None and sub.is_live:
        steps.append(
            f"If the card was stolen, stop charging it: cancel {sub.id} once the account holder "
            "is known not to be the cardholder"
        )
    steps += ["Document the outcome on the case", "Follow up with the customer once it closes"]
    verify = ctx.verify_contract(sub)
    refund_now = inquiry and not already_refunded and dispute.charge_id is not None
    action = RecommendedAction(
        type="refund_charge" if refund_now else "respond_to_dispute",
        target=dispute.charge_id if refund_now else dispute.id,
        reversible=False,
        steps=with_contract_check(steps, verify),
    )
    if inquiry:
        why = (
            "an inquiry withdraws no funds and a full refund closes it without a dispute fee, "
            "so refunding is usually cheaper than defending it"
        )
    else:
        why = "answering it with evidence is the only action that does not lose the money twice"
    return Finding(
        kind="dispute",
        classification=classification,
        severity="high" if inquiry else "critical",
        customer_id=customer_id,
        subjects=(dispute.id, *((dispute.charge_id,) if dispute.charge_id else ())),
        evidence=evidence_of(
            dispute.event_id,
            charge.event_id if charge else None,
            invoice.event_id if invoice else None,
            sub.event_id if sub else None,
        ),
        revenue_impact=RevenueImpact(dispute.currency, dispute.amount, _mrr(sub)),
        recommended_action=action,
        reasoning=(
            f"Dispute {dispute.id} ({money}, {dispute.reason or 'no reason'}, {dispute.status}) "
            f"means {meaning}; {why}."
        ),
        question=question,
        verify_contract=verify,
        product_gaps=gaps,
        signals=(
            f"dispute_reason:{dispute.reason or 'unknown'}",
            f"dispute_status:{dispute.status}",
            *(("inquiry",) if dispute.is_inquiry else ()),
            *(("charge_unknown",) if charge is None else ()),
            *deadline.signals,
        ),
        auto_clear=True,
    )


def _mrr(sub: Subscription | None) -> int | None:
    return sub.monthly_amount_minor if sub and sub.is_live else 0
