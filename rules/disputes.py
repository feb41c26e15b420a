"""Disputes: the bank has already taken the money back, and the clock for evidence runs.

The one action never to take is refunding the disputed charge (the customer would be paid
twice); the reason code decides which bucket the trust break belongs to.
"""

from __future__ import annotations

from rules.context import RuleContext
from rules.findings import (
    Finding,
    RecommendedAction,
    RevenueImpact,
    evidence_of,
    with_contract_check,
)
from rules.formatting import format_money, format_time
from rules.model import Dispute

OPEN_DISPUTE_STATUSES = frozenset(
    {"warning_needs_response", "warning_under_review", "needs_response", "under_review"}
)

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
    "fraudulent": (
        "product_failure",
        ("unclear_statement_descriptor",),
        "the cardholder does not accept the charge as theirs (a trust break)",
    ),
    "unrecognized": (
        "product_failure",
        ("unclear_statement_descriptor",),
        "the cardholder does not recognise the charge (a trust break)",
    ),
}


def find_disputes(ctx: RuleContext) -> list[Finding]:
    """One critical finding per open dispute whose customer can be identified."""
    findings = []
    customer_ids = sorted({c.id for c in ctx.snapshot.customers})
    for dispute in ctx.snapshot.disputes:
        if dispute.status not in OPEN_DISPUTE_STATUSES:
            continue
        charge = ctx.snapshot.charge(dispute.charge_id)
        customer_id = charge.customer_id if charge else None
        if customer_id is None and len(customer_ids) == 1:
            customer_id = customer_ids[0]  # the snapshot is one person's: it is theirs
        if customer_id is None:
            continue
        findings.append(_dispute_finding(ctx, dispute, customer_id))
    return findings


def _dispute_finding(ctx: RuleContext, dispute: Dispute, customer_id: str) -> Finding:
    charge = ctx.snapshot.charge(dispute.charge_id)
    invoice = next(
        (
            i
            for i in ctx.snapshot.invoices
            if dispute.charge_id
            and (
                i.charge_id == dispute.charge_id
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
    classification, gaps, meaning = _BY_REASON.get(
        dispute.reason or "", ("unclassified", (), f"the reason given is {dispute.reason!r}")
    )
    question = (
        None
        if classification != "unclassified"
        else "What did the customer tell their bank, and did they contact us before disputing?"
    )
    money = format_money(dispute.amount, dispute.currency)
    steps = [
        f"Do not refund {dispute.charge_id or 'the disputed charge'}: the bank already took "
        f"{money} back, a refund would pay it twice",
    ]
    if dispute.reason == "subscription_canceled" and sub is not None and sub.is_live:
        steps.append(f"Stop future charges: cancel {sub.id} at period end if the customer wants")
    steps += [
        f"Gather evidence and respond to {dispute.id} before "
        f"{format_time(dispute.evidence_due_by)}",
        "Document the response on the case",
        "Follow up with the customer once the bank decides",
    ]
    verify = ctx.verify_contract(sub)
    return Finding(
        kind="dispute",
        classification=classification,
        severity="critical",
        customer_id=customer_id,
        subjects=(dispute.id, *((dispute.charge_id,) if dispute.charge_id else ())),
        evidence=evidence_of(
            dispute.event_id,
            charge.event_id if charge else None,
            invoice.event_id if invoice else None,
            sub.event_id if sub else None,
        ),
        revenue_impact=RevenueImpact(
            dispute.currency, dispute.amount, sub.monthly_amount_minor if sub and sub.is_live else 0
        ),
        recommended_action=RecommendedAction(
            type="respond_to_dispute",
            target=dispute.id,
            reversible=False,
            steps=with_contract_check(steps, verify),
        ),
        reasoning=(
            f"Dispute {dispute.id} ({money}, {dispute.reason or 'no reason'}, {dispute.status}) "
            f"means {meaning}, so answering it with evidence is the only action that does not "
            "lose the money twice."
        ),
        question=question,
        verify_contract=verify,
        product_gaps=gaps,
        signals=(
            f"dispute_reason:{dispute.reason or 'unknown'}",
            f"dispute_status:{dispute.status}",
        ),
        auto_clear=True,
    )
