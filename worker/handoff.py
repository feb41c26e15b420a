"""The six-section operator handoff, rendered from a finding and the customer's snapshot.

The wording lives in ``worker/templates/handoff/*.j2`` (one file per section) so that a
support lead can edit it without touching code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rules.formatting import format_money, format_time
from rules.versions import billing_reason_of
from worker.pii import mask_email
from worker.templating import template_env

if TYPE_CHECKING:
    from rules import BillingSnapshot, Finding


SECTIONS = ("customer", "billing_state", "decision", "action_taken", "follow_up", "product_gap")
TITLES = {
    "customer": "CUSTOMER",
    "billing_state": "BILLING STATE",
    "decision": "DECISION",
    "action_taken": "ACTION TAKEN",
    "follow_up": "FOLLOW-UP",
    "product_gap": "PRODUCT GAP",
}

_env = template_env("handoff")


def _day(ts: int | None) -> str | None:
    return format_time(ts) if ts else None


def plan_name(sub: Any, snapshot: BillingSnapshot) -> str | None:
    """What the subscription is for, by product name ("Pro", "Pro + Storage"); the product id
    where the name was never learned."""
    names = dict.fromkeys(
        snapshot.product_name(item.product_id) or item.product_id or item.price_id
        for item in sub.items
    )
    return " + ".join(n for n in names if n) or None


def _plan(sub: Any, snapshot: BillingSnapshot) -> str:
    parts = []
    for item in sub.items:
        every = (
            f"{item.interval_count} {item.interval}s"
            if item.interval_count not in (None, 1)
            else item.interval
        )
        name = snapshot.product_name(item.product_id) or item.product_id or item.price_id
        if item.usage_type == "metered":
            price = f"metered, {format_money(item.unit_amount, item.currency)} per unit"
            parts.append(f"{name} {price}/{every or '?'}")
            continue
        price = (
            "tiered price"
            if item.billing_scheme == "tiered"
            else format_money(item.unit_amount, item.currency)
        )
        parts.append(f"{item.quantity or 1} × {name} {price}/{every or '?'}")
    return ", ".join(parts) or "no items"


def _monthly(sub: Any) -> str:
    """Monthly revenue as an operator should read it: 0 in a trial, "unknown" and why."""
    reason = sub.unknown_revenue_reason
    if reason is not None:
        return f"unknown ({reason})"
    after = format_money(sub.monthly_amount_after_trial_minor, sub.currency)
    if sub.status == "trialing":
        return f"0 during the trial, then {after}"
    return after


def customer_view(finding: Finding, snapshot: BillingSnapshot) -> dict[str, Any]:
    """Name, masked email and id of the customer a finding is about (no other PII)."""
    customer = next((c for c in snapshot.customers if c.id == finding.customer_id), None)
    email = customer.email if customer else None
    name = customer.name if customer else None
    if not email or not name:
        invoice = next((i for i in snapshot.invoices if i.customer_id == finding.customer_id), None)
        email = email or (invoice.customer_email if invoice else None)
        name = name or (invoice.customer_name if invoice else None)
    return {
        "id": finding.customer_id,
        "name": name,
        "first_name": (name or "").split(" ")[0] or None,
        "email_masked": mask_email(email),
    }


def finding_plan_name(finding: Finding, snapshot: BillingSnapshot) -> str | None:
    """The product name(s) of the first subscription a finding is about (for Slack)."""
    sub = next((s for s in map(snapshot.subscription, finding.subjects) if s is not None), None)
    return plan_name(sub, snapshot) if sub else None


def render_handoff(
    finding: Finding, snapshot: BillingSnapshot, *, action_taken: str | None = None
) -> dict[str, str]:
    """The six sections as plain text, keyed as in the case JSON contract."""
    subjects = set(finding.subjects)
    subs = sorted(snapshot.subscriptions, key=lambda s: (s.created or 0, s.id))
    primary_sub = next((s for s in subs if s.id in subjects), subs[-1] if subs else None)
    invoices = sorted(snapshot.invoices, key=lambda i: (i.created or 0, i.id))[-5:]
    subject_invoice = next((i for i in invoices if i.id in subjects), None)
    charges = sorted(snapshot.charges, key=lambda c: (c.created or 0, c.id))[-5:]
    impact = finding.revenue_impact
    context = {
        "finding": finding,
        "customer": customer_view(finding, snapshot),
        "other_customers": sorted(c.id for c in snapshot.customers if c.id != finding.customer_id),
        "subscriptions": [
            {
                "id": s.id,
                "status": s.status,
                "cancel_at_period_end": s.cancel_at_period_end,
                "plan": _plan(s, snapshot),
                "monthly": _monthly(s),
                "created": _day(s.created),
                "customer_id": s.customer_id,
            }
            for s in subs
        ],
        "invoices": [
            {
                "id": i.id,
                "status": i.status,
                "billing_reason": billing_reason_of(
                    i, snapshot.invoices, snapshot.subscription(i.subscription_id)
                ),
                "amount": format_money(i.amount_due, i.currency),
                "attempt_count": i.attempt_count,
                "next_payment_attempt": _day(i.next_payment_attempt),
            }
            for i in invoices
        ],
        "charges": [
            {
                "id": c.id,
                "status": c.status,
                "amount": format_money(c.amount, c.currency),
                "refunded": format_money(c.amount_refunded, c.currency)
                if c.amount_refunded
                else None,
                "card": f"{c.card_brand} ····{c.card_last4}" if c.card_last4 else None,
            }
            for c in charges
        ],
        "anomalies": [s.replace("_", " ") for s in finding.signals],
        "impact": format_money(impact.amount_minor, impact.currency)
        if impact.amount_minor
        else None,
        "plan": plan_name(primary_sub, snapshot) if primary_sub else None,
        "invoice_amount": (
            format_money(subject_invoice.amount_due, subject_invoice.currency)
            if subject_invoice
            else None
        ),
        "pay_link": subject_invoice.hosted_invoice_url if subject_invoice else None,
        "action_taken": action_taken,
        "promises_refund": promises_refund(finding),
        "target_state": target_state(finding, snapshot),
        "target_refunded": target_refunded(finding, snapshot),
        "kept_subscription": next(
            (
                s
                for s in finding.subjects
                if s.startswith("sub_") and s != finding.recommended_action.target
            ),
            None,
        ),
    }
    return {
        section: _env.get_template(f"{section}.j2").render(**context).strip()
        for section in SECTIONS
    }


def target_state(finding: Finding, snapshot: BillingSnapshot) -> str | None:
    """Where the subscription the decision cancels stands now: "canceled", "cancels_at_period_end",
    or None while nothing has happened to it (what FOLLOW-UP may promise or report)."""
    sub = snapshot.subscription(finding.recommended_action.target)
    if sub is None:
        return None
    if sub.status == "canceled":
        return "canceled"
    return "cancels_at_period_end" if sub.cancel_at_period_end else None


def target_refunded(finding: Finding, snapshot: BillingSnapshot) -> bool:
    """Whether a charge of the subscription the decision cancels has been refunded."""
    target = finding.recommended_action.target
    invoices = {i.id for i in snapshot.invoices if target and i.subscription_id == target}
    return any(c.amount_refunded for c in snapshot.charges if c.invoice_id in invoices)


def promises_refund(finding: Finding) -> bool:
    """Whether the decision refunds anything: only then may the follow-up say "refund"."""
    action = finding.recommended_action
    return action.type == "refund_charge" or any(s.startswith("Refund ") for s in action.steps)


def handoff_text(handoff: dict[str, str]) -> str:
    """The handoff as the block an operator pastes into a ticket."""
    blocks = []
    for section in SECTIONS:
        body = handoff.get(section, "").replace("\n", "\n" + " " * 16)
        blocks.append(f"{TITLES[section]:<15} {body}")
    return "\n".join(blocks)
