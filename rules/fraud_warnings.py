"""Early fraud warnings: the issuer flagged a charge as fraud before any dispute.

Stripe's Early Fraud Warning object (docs.stripe.com/api/early_fraud_warnings/object):
``actionable`` is true while the charge has no dispute and is not fully refunded, and "you may
wish to proactively refund a charge that receives an EFW, in order to avoid receiving a dispute
later". "How disputes work" (docs.stripe.com/disputes/how-disputes-work, early fraud warnings):
most warnings escalate to a fraudulent dispute unless liability shift covers the payment. So the
safest action is a full refund of that one charge, unless it is already disputed or refunded.
"""

from __future__ import annotations

from rules.context import RuleContext
from rules.findings import Finding, RecommendedAction, RevenueImpact, evidence_of
from rules.formatting import format_money
from rules.model import EarlyFraudWarning


def find_fraud_warnings(ctx: RuleContext) -> list[Finding]:
    """One finding per actionable warning whose charge is neither disputed nor refunded."""
    customer_ids = sorted({c.id for c in ctx.snapshot.customers})
    findings = []
    for warning in ctx.snapshot.early_fraud_warnings:
        charge = ctx.snapshot.charge(warning.charge_id)
        if not warning.actionable or warning.charge_id is None:
            continue
        if ctx.snapshot.disputes_of(warning.charge_id):
            continue  # the dispute's own case speaks for the charge now
        if charge is not None and (charge.refunded or charge.amount_refunded >= charge.amount):
            continue
        customer_id = (charge.customer_id if charge else None) or warning.customer_id
        if customer_id is None and len(customer_ids) == 1:
            customer_id = customer_ids[0]
        findings.append(_warning_finding(ctx, warning, customer_id or ""))
    return findings


def _warning_finding(ctx: RuleContext, warning: EarlyFraudWarning, customer_id: str) -> Finding:
    charge = ctx.snapshot.charge(warning.charge_id)
    amount = (charge.amount - charge.amount_refunded) if charge else 0
    currency = charge.currency if charge else None
    money = format_money(amount, currency) if charge else "its full amount"
    fraud_type = (warning.fraud_type or "misc").replace("_", " ")
    steps = (
        *(
            ()
            if charge and customer_id
            else (
                f"Find the payment: billing-ops has not seen {warning.charge_id}; open it in the "
                "Stripe dashboard",
            )
        ),
        f"Refund {warning.charge_id} in full ({money}) now, before the cardholder disputes it",
        "Check other payments from the same card and the account's activity for the same fraud",
        "Do not charge this card again until the account holder is confirmed",
        "Document the refund on the case",
    )
    return Finding(
        kind="fraud_warning",
        classification="unclassified",
        severity="high",
        customer_id=customer_id,
        subjects=(warning.charge_id or warning.id, warning.id),
        evidence=evidence_of(warning.event_id, charge.event_id if charge else None),
        revenue_impact=RevenueImpact(currency, amount, 0),
        recommended_action=RecommendedAction(
            type="refund_charge",
            target=warning.charge_id,
            reversible=False,
            steps=steps,
        ),
        reasoning=(
            f"The card issuer sent an early fraud warning ({fraud_type}) for "
            f"{warning.charge_id}; most such warnings become fraudulent disputes, and refunding "
            "first avoids the dispute and its fee, which costs less than defending it."
        ),
        question=(
            "Does the account holder recognise this payment, or was the card used without the "
            "cardholder's permission?"
        ),
        verify_contract=False,
        product_gaps=(),
        signals=(f"fraud_type:{warning.fraud_type or 'misc'}", "early_fraud_warning"),
        auto_clear=True,
    )
