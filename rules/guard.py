"""The guard over all findings of one person: no advice may harm what another finding protects.

Rules decide one problem at a time; this pass sees them together, after the rules and before
any case, and removes or rewrites any recommended refund of a charge that is under a
chargeback, already refunded or paid for team seats, any cancellation of the customer's last
continuing subscription or of a team's seat, and a second refund of a charge another finding
already refunds. Each rewritten finding says what changed and why in ``guard_notes``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace

from rules.context import RuleContext
from rules.findings import Finding, RecommendedAction
from rules.model import Subscription

_REFUND = re.compile(r"(^|: )refund\b", re.IGNORECASE)


def refund_targets(finding: Finding, charge_ids: Iterable[str]) -> frozenset[str]:
    """The charges among ``charge_ids`` this finding tells the operator to refund."""
    action = finding.recommended_action
    found = {action.target} if action.type == "refund_charge" and action.target else set()
    for step in action.steps:
        if _REFUND.search(step):
            found |= {c for c in charge_ids if _names(step, c)}
    return frozenset(found)


def _names(text: str, object_id: str) -> bool:
    return re.search(rf"(?<![\w]){re.escape(object_id)}(?![\w])", text) is not None


def guard_findings(ctx: RuleContext, findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """``findings`` (sorted by key) with every harmful or contradictory action taken out."""
    findings = tuple(findings)
    blocked = _refund_blockers(ctx, findings)
    team_subs = _team_subscriptions(ctx, findings)
    continuing = {s.id for s in ctx.snapshot.subscriptions if _continues(s)}
    refunded_by: dict[str, str] = {}
    guarded = []
    for finding in findings:
        finding = _guard_cancel(ctx, finding, continuing, team_subs)
        finding = _guard_refunds(ctx, finding, blocked, refunded_by)
        guarded.append(finding)
    return tuple(guarded)


def _continues(sub: Subscription) -> bool:
    """Live and not scheduled to end: what the customer still has after this period."""
    return sub.is_live and not sub.cancel_at_period_end


def _refund_blockers(ctx: RuleContext, findings: tuple[Finding, ...]) -> Mapping[str, str]:
    """Charge id -> why it must not be refunded."""
    why: dict[str, str] = {}
    for charge in ctx.snapshot.charges:
        if charge.refunded or charge.amount_refunded > 0:
            why[charge.id] = f"{charge.id} already has a refund"
    for dispute in ctx.snapshot.disputes:
        if dispute.charge_id and dispute.blocks_refund:
            why[dispute.charge_id] = (
                f"{dispute.charge_id} is under a chargeback ({dispute.id}, {dispute.status}): "
                "the bank already returned the money, a refund would pay it twice"
            )
    team = _team_subscriptions(ctx, findings)
    for invoice in ctx.snapshot.invoices:
        if invoice.subscription_id in team:
            paid = ctx.charge_of_invoice(invoice)
            if paid is not None:
                why.setdefault(
                    paid.id,
                    f"{paid.id} paid for team seats ({invoice.subscription_id}), bought on purpose",
                )
    return why


def _team_subscriptions(ctx: RuleContext, findings: tuple[Finding, ...]) -> frozenset[str]:
    """Subscriptions a team-purchase finding names, and any with several seats or seat metadata."""
    named = {
        subject
        for f in findings
        if f.classification == "team_purchase"
        for subject in f.subjects
        if subject.startswith("sub_")
    }
    keys = ctx.config.seat_metadata_keys
    seated = {
        s.id
        for s in ctx.snapshot.subscriptions
        if s.max_quantity > 1 or any(s.metadata.get(k, "").strip() for k in keys)
    }
    return frozenset(named | seated)


def _guard_cancel(
    ctx: RuleContext, finding: Finding, continuing: set[str], team_subs: frozenset[str]
) -> Finding:
    action = finding.recommended_action
    if action.type != "cancel_subscription" or not action.target:
        return finding
    target = action.target
    if target in team_subs:
        why = f"{target} holds team seats bought on purpose"
    elif continuing and not continuing - {target}:
        why = (
            f"{target} is the customer's last subscription that continues; cancelling it "
            "would leave a paying customer with none"
        )
    else:
        continuing.discard(target)  # later findings see the state after this cancellation
        return finding
    steps = [
        step
        for step in action.steps
        if not (_names(step, target) and re.search(r"(^|: )cancel\b", step, re.IGNORECASE))
        and not _REFUND.search(step)  # a refund only made sense with the cancellation
    ]
    safe = RecommendedAction(
        type="contact_customer",
        target=finding.customer_id or None,
        reversible=True,
        steps=(f"Do not cancel {target}: {why}", *steps),
    )
    note = f"guard: replaced 'cancel {target}' (and its refund) with contacting the customer: {why}"
    return replace(finding, recommended_action=safe, guard_notes=(*finding.guard_notes, note))


def _guard_refunds(
    ctx: RuleContext, finding: Finding, blocked: Mapping[str, str], refunded_by: dict[str, str]
) -> Finding:
    charge_ids = [c.id for c in ctx.snapshot.charges]
    action = finding.recommended_action
    if action.target and action.type == "refund_charge":
        charge_ids.append(action.target)
    targets = refund_targets(finding, charge_ids)
    why: dict[str, str] = {}
    for charge_id in sorted(targets):
        if charge_id in blocked:
            why[charge_id] = blocked[charge_id]
        elif charge_id in refunded_by:
            why[charge_id] = f"case {refunded_by[charge_id]} already recommends refunding it"
        else:
            refunded_by[charge_id] = finding.key
    if not why:
        return finding
    steps = [
        step
        for step in action.steps
        if not (_REFUND.search(step) and any(_names(step, c) for c in why))
    ]
    notes = tuple(f"guard: removed the refund of {c}: {reason}" for c, reason in why.items())
    donts = tuple(f"Do not refund {c}: {reason}" for c, reason in why.items())
    if action.type == "refund_charge" and action.target in why:
        action = RecommendedAction(
            type="contact_customer" if finding.customer_id else "no_op",
            target=finding.customer_id or None,
            reversible=True,
            steps=(*donts, *steps),
        )
    else:
        action = replace(action, steps=(*donts, *steps))
    return replace(finding, recommended_action=action, guard_notes=(*finding.guard_notes, *notes))
