"""Duplicate subscriptions and duplicate charges.

The costly mistake here is refunding a team's second seat or a payment that was only seen twice;
so team signals always win over "accidental", and one payment (same charge, same payment intent)
is never compared with itself.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

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
from rules.model import Charge, Subscription


def find_duplicate_subscriptions(ctx: RuleContext) -> list[Finding]:
    """One finding per newer live subscription overlapping an older one of the same person."""
    live = sorted(
        (s for s in ctx.snapshot.subscriptions if s.is_live and s.product_ids),
        key=lambda s: (s.created or 0, s.id),
    )
    findings: list[Finding] = []
    paired: set[str] = set()
    for newer in live:
        older = next(
            (
                s
                for s in live
                if s is not newer
                and (s.created or 0, s.id) < (newer.created or 0, newer.id)
                and s.product_ids & newer.product_ids
                and ctx.person(s.customer_id) == ctx.person(newer.customer_id)
                and s.id not in paired
            ),
            None,
        )
        if older is None or newer.customer_id is None:
            continue
        paired.add(newer.id)  # a third copy pairs with the original, not with the second
        findings.append(_duplicate_subscription_finding(ctx, older, newer))
    return findings


def _has_seat_metadata(sub: Subscription, keys: tuple[str, ...]) -> bool:
    return any(sub.metadata.get(key, "").strip() for key in keys)


def _duplicate_subscription_finding(
    ctx: RuleContext, older: Subscription, newer: Subscription
) -> Finding:
    config = ctx.config
    gap = abs((newer.created or 0) - (older.created or 0))
    same_record = older.customer_id == newer.customer_id
    team_reasons = [
        reason
        for reason, applies in (
            ("several seats", newer.max_quantity > 1 or older.max_quantity > 1),
            (
                "seat/team metadata",
                _has_seat_metadata(newer, config.seat_metadata_keys)
                or _has_seat_metadata(older, config.seat_metadata_keys),
            ),
            ("different products", newer.product_ids != older.product_ids),
        )
        if applies
    ]
    intervals_differ = {i.interval for i in newer.items} != {i.interval for i in older.items}
    signals = ("same_customer" if same_record else "same_email_different_customer",)
    paid_invoice = next(
        (i for i in reversed(ctx.invoices_of(newer.id)) if i.status == "paid" and i.amount_paid),
        None,
    )
    charge = ctx.charge_of_invoice(paid_invoice) if paid_invoice else None
    evidence = evidence_of(
        older.event_id,
        newer.event_id,
        paid_invoice.event_id if paid_invoice else None,
        charge.event_id if charge else None,
    )
    currency = newer.currency or (paid_invoice.currency if paid_invoice else None)
    mrr = newer.monthly_amount_minor
    verify = ctx.verify_contract(newer) or ctx.verify_contract(older)
    subjects = (newer.id, older.id, *((charge.id,) if charge else ()))
    base: dict[str, Any] = dict(
        kind="duplicate_subscription",
        customer_id=newer.customer_id or "",
        subjects=subjects,
        evidence=evidence,
        auto_clear=True,
    )
    if team_reasons:
        return Finding(
            **base,
            classification="team_purchase",
            severity="low",
            revenue_impact=RevenueImpact(currency, 0, mrr),
            recommended_action=RecommendedAction(
                type="contact_customer",
                target=newer.customer_id,
                reversible=True,
                steps=with_contract_check(
                    (
                        f"Preserve every seat: do not cancel {newer.id} or {older.id}",
                        "Clarify the billing model with the customer "
                        "(one subscription with several seats, or one per member)",
                        "Do not refund: these seats were bought on purpose",
                        "Document the team's billing shape on the case",
                        "Follow up once the customer confirms who uses which seat",
                    ),
                    verify,
                ),
            ),
            reasoning=(
                f"{newer.id} overlaps {older.id} but shows {', '.join(team_reasons)}, "
                "so it is a team purchase to preserve and explain, never to refund."
            ),
            question=None,
            verify_contract=True,
            product_gaps=("no_seat_explanation",),
            signals=(*signals, "team_purchase"),
        )
    if older.cancel_at_period_end and not newer.cancel_at_period_end:
        return _resubscribe_finding(ctx, older, newer, base, signals, currency, mrr, verify)
    if older.status == "trialing" and newer.status != "trialing":
        return _trial_upgrade_finding(ctx, older, newer, base, signals, currency, verify)
    window = config.duplicate_subscription_window_seconds
    if gap > window or intervals_differ:
        why = (
            "bill on different intervals (a plan switch may have left both live)"
            if intervals_differ
            else f"were created {gap // 86_400} day(s) apart"
        )
        return Finding(
            **base,
            classification="unclassified",
            severity=severity_for_mrr(mrr, config, floor="medium", currency=currency),
            revenue_impact=RevenueImpact(currency, 0, mrr),
            recommended_action=RecommendedAction(
                type="contact_customer",
                target=newer.customer_id,
                reversible=True,
                steps=with_contract_check(
                    (
                        "Ask the customer whether both subscriptions are wanted",
                        "Change nothing until they answer",
                        "Document the answer on the case",
                    ),
                    verify,
                ),
            ),
            reasoning=(
                f"{newer.id} and {older.id} are live on the same product with one seat each but "
                f"{why}, so the evidence cannot tell a mistake from an intended second plan."
            ),
            question=(
                f"Did you mean to keep a second subscription ({newer.id}, started "
                f"{format_time(newer.created)}) next to {older.id}, e.g. for another person "
                "or workspace?"
            ),
            verify_contract=verify,
            product_gaps=(),
            signals=signals,
        )
    refund_amount = paid_invoice.amount_paid if paid_invoice else 0
    if charge:
        refund_step = (
            f"Refund only {charge.id} ({format_money(refund_amount, currency)}), the newer "
            f"subscription's payment; leave {older.id}'s payments alone"
        )
    elif newer.status == "trialing":
        refund_step = f"Nothing to refund: {newer.id} is a trial and has taken no payment"
    else:
        refund_step = f"Refund only the payment of {newer.id} (no paid charge of it is known yet)"
    return Finding(
        **base,
        classification="accidental_duplicate",
        severity=severity_for_mrr(mrr, config, floor="high", currency=currency),
        revenue_impact=RevenueImpact(currency, refund_amount, mrr),
        recommended_action=RecommendedAction(
            type="cancel_subscription",
            target=newer.id,
            reversible=False,
            steps=with_contract_check(
                (
                    "Restore self-serve: send the customer a billing portal link showing "
                    "the subscription they keep",
                    f"Fix the duplicate state: cancel the newer subscription {newer.id} "
                    f"immediately, keep {older.id}",
                    refund_step,
                    "Document the cancellation and refund on the case",
                    "Follow up to confirm the customer sees one subscription and one refund",
                ),
                verify,
            ),
        ),
        reasoning=(
            f"{newer.id} repeats {older.id} (same product, one seat each, created "
            f"{gap // 60} min apart, no team metadata), so cancelling the newer one and "
            "refunding only its payment undoes the mistake without touching the plan in use."
        ),
        question=None,
        verify_contract=verify,
        product_gaps=("no_duplicate_guard",),
        signals=signals,
    )


def _resubscribe_finding(
    ctx: RuleContext,
    older: Subscription,
    newer: Subscription,
    base: dict[str, Any],
    signals: tuple[str, ...],
    currency: str | None,
    mrr: int | None,
    verify: bool,
) -> Finding:
    """The older one is set to end (``cancel_at_period_end``) and the customer bought again.

    Stripe ends a subscription with ``cancel_at_period_end`` by itself at the end of its
    period (Subscription object reference), so the newer one is what the customer keeps:
    cancelling it would leave them with nothing once the older one ends.
    """
    ends = format_time(older.cancel_at or older.current_period_end)
    return Finding(
        **base,
        classification="unclassified",
        severity="low",
        revenue_impact=RevenueImpact(currency, 0, mrr),
        recommended_action=RecommendedAction(
            type="contact_customer",
            target=newer.customer_id,
            reversible=True,
            steps=with_contract_check(
                (
                    f"Keep {newer.id}: it is the subscription that continues; do not cancel it",
                    f"Cancel nothing: {older.id} is set to cancel at period end and ends by "
                    f"itself on {ends}",
                    "Until then both bill for the same product; a partial refund of the overlap "
                    "is a goodwill gesture the customer may ask for, not a correction",
                    "Document the answer on the case",
                ),
                verify,
            ),
        ),
        reasoning=(
            f"{older.id} was already set to end on {ends} when {newer.id} was bought, so this is "
            "most likely a deliberate re-subscribe or plan change, not a mistake; cancelling "
            f"{newer.id} would leave the customer with no subscription once {older.id} ends."
        ),
        question=(
            f"You scheduled {older.id} to end on {ends} and then started {newer.id}: shall we "
            f"simply let {older.id} end as planned?"
        ),
        verify_contract=verify,
        product_gaps=("no_resubscribe_path",),
        signals=(*signals, "resubscribe_after_cancel"),
    )


def _trial_upgrade_finding(
    ctx: RuleContext,
    older: Subscription,
    newer: Subscription,
    base: dict[str, Any],
    signals: tuple[str, ...],
    currency: str | None,
    verify: bool,
) -> Finding:
    """A trial still running when the customer bought the paid plan: keep the paid one.

    A trialing subscription starts charging at ``trial_end`` (Stripe, "Use trial periods on
    subscriptions"), so the trial left behind is what would bill twice; it took no payment, so
    cancelling it refunds nothing, and the paid subscription is never touched.
    """
    trial_mrr = older.monthly_amount_after_trial_minor  # a trial bills 0 now; this at trial_end
    ends = format_time(older.trial_end)
    return Finding(
        **base,
        classification="accidental_duplicate",
        severity=severity_for_mrr(trial_mrr, ctx.config, floor="medium", currency=currency),
        revenue_impact=RevenueImpact(currency, 0, trial_mrr),
        recommended_action=RecommendedAction(
            type="cancel_subscription",
            target=older.id,
            reversible=False,
            steps=with_contract_check(
                (
                    f"Keep {newer.id}: it is the plan the customer paid for; do not cancel or "
                    "refund it",
                    f"Cancel the trial {older.id} before it ends on {ends}, when it would start "
                    "charging as a second subscription",
                    f"Nothing to refund: the trial {older.id} has taken no payment",
                    "Document the cancellation on the case",
                    "Follow up to confirm the customer sees one subscription",
                ),
                verify,
            ),
        ),
        reasoning=(
            f"{newer.id} was bought while the trial {older.id} was still running: an upgrade "
            f"from the trial, so the paid plan stays and the trial goes before it bills on {ends}."
        ),
        question=None,
        verify_contract=verify,
        product_gaps=("no_trial_upgrade_path",),
        signals=(*signals, "upgrade_from_trial"),
    )


def _is_settled_payment(charge: Charge) -> bool:
    return (
        charge.status == "succeeded"
        and charge.paid
        and not charge.refunded
        and charge.amount_refunded == 0
    )


def _same_payment(a: Charge, b: Charge) -> bool:
    """Two records of one payment: same charge, or the same payment intent."""
    if a.id == b.id:
        return True
    return a.payment_intent_id is not None and a.payment_intent_id == b.payment_intent_id


def _invoice_id_of(ctx: RuleContext, charge: Charge) -> str | None:
    """The invoice a charge paid: its own link (old APIs), or the invoice naming it or its
    payment intent (current APIs list the payment intent under ``invoice.payments``)."""
    if charge.invoice_id:
        return charge.invoice_id
    for invoice in ctx.snapshot.invoices:
        if invoice.charge_id == charge.id or (
            charge.payment_intent_id and invoice.payment_intent_id == charge.payment_intent_id
        ):
            return invoice.id
    return None


def _different_bills(ctx: RuleContext, a: Charge, b: Charge) -> bool:
    """Two charges that paid two different invoices are two purchases, not one paid twice.

    In Stripe a charge belongs to one payment intent and an invoice is paid by its own
    payment intent (Invoice object, ``payments``); two subscriptions bought minutes apart
    (a team's seats) each pay their own invoice. Whether the second subscription was a
    mistake is the duplicate-subscription rule's question, never this one's.
    """
    first, second = _invoice_id_of(ctx, a), _invoice_id_of(ctx, b)
    return first is not None and second is not None and first != second


def _contested(ctx: RuleContext, charge: Charge) -> bool:
    """A charge under a dispute or an early fraud warning: that case speaks for it."""
    return bool(ctx.snapshot.disputes_of(charge.id)) or any(
        w.charge_id == charge.id for w in ctx.snapshot.early_fraud_warnings
    )


def find_duplicate_charges(ctx: RuleContext) -> list[Finding]:
    """Equal successful charges of one customer or card within the window: refund the later.

    A disputed (or fraud-flagged) charge never pairs: refunding its twin while the bank
    returns it would pay twice, and its own case already advises on it.
    """
    window = ctx.config.duplicate_charge_window_seconds
    settled = sorted(
        (c for c in ctx.snapshot.charges if _is_settled_payment(c) and not _contested(ctx, c)),
        key=lambda c: (c.created or 0, c.id),
    )
    earlier_of: dict[str, Charge] = {}
    for first, later in combinations(settled, 2):
        if later.id in earlier_of or _same_payment(first, later):
            continue
        if _different_bills(ctx, first, later):
            continue
        same_owner = (first.customer_id is not None and first.customer_id == later.customer_id) or (
            first.card_fingerprint is not None and first.card_fingerprint == later.card_fingerprint
        )
        if (
            same_owner
            and first.amount == later.amount
            and first.currency == later.currency
            and (later.created or 0) - (first.created or 0) <= window
        ):
            earlier_of[later.id] = first
    findings = []
    for later in settled:
        earlier = earlier_of.get(later.id)
        customer_id = later.customer_id or (earlier.customer_id if earlier else None)
        if earlier is None or customer_id is None:
            continue  # a guest payment has no customer to open a case for
        money = format_money(later.amount, later.currency)
        seconds = (later.created or 0) - (earlier.created or 0)
        findings.append(
            Finding(
                kind="duplicate_charge",
                classification="accidental_duplicate",
                severity="high",
                customer_id=customer_id,
                subjects=(later.id, earlier.id),
                evidence=evidence_of(earlier.event_id, later.event_id),
                revenue_impact=RevenueImpact(later.currency, later.amount, 0),
                recommended_action=RecommendedAction(
                    type="refund_charge",
                    target=later.id,
                    reversible=False,
                    steps=(
                        f"Verify in Stripe that {earlier.id} and {later.id} are two separate "
                        "payments (different payment intents) and neither is refunded",
                        f"Refund only the later charge {later.id} ({money})",
                        "Document the refund on the case",
                        "Follow up with the customer with the refund's receipt",
                    ),
                ),
                reasoning=(
                    f"{later.id} took {money} {seconds} s after {earlier.id} for the same amount "
                    "and payer, and no refund exists, so refunding the later one undoes the "
                    "double payment."
                ),
                question=None,
                verify_contract=False,
                product_gaps=("no_duplicate_guard",),
                signals=("same_card",)
                if earlier.card_fingerprint and earlier.card_fingerprint == later.card_fingerprint
                else ("same_customer",),
                auto_clear=True,
            )
        )
    return findings
