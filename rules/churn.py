"""Churn signals: a customer on the way out, or about to fall out by accident.

State-derived signals (cancel scheduled, trial ending without a card, card expiring) are merged
into one finding per live subscription and clear when the state does; cancellations and
downgrades are event-derived (they happened) and stay until an operator resolves them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from rules.checkout import started, unpaid_first_invoice
from rules.config import RulesConfig
from rules.context import RuleContext
from rules.events import BillingEvent
from rules.findings import (
    Finding,
    RecommendedAction,
    RevenueImpact,
    evidence_of,
    severity_for_mrr,
    with_contract_check,
)
from rules.formatting import format_money, format_time
from rules.model import Subscription, monthly_total
from rules.parsing import parse_subscription, parse_subscription_items

DAY = 86_400
#: Stripe sends ``customer.subscription.trial_will_end`` "three days before a subscription's
#: trial period is scheduled to end" (API reference, Types of events:
#: customer.subscription.trial_will_end; docs.stripe.com/billing/subscriptions/trials). Its
#: ``created`` is that instant as Stripe's scheduler saw it, which can be seconds to minutes
#: before ``trial_end - 3 days``: the window opens a day earlier so Stripe's own notice always
#: falls inside it, whenever it arrives.
STRIPE_TRIAL_NOTICE_SECONDS = 3 * DAY
TRIAL_NOTICE_LEEWAY_SECONDS = DAY

# Cancellation feedback that says the product let the customer down.
PRODUCT_FAILURE_FEEDBACK = {
    "missing_features": "missing_features",
    "low_quality": "low_quality",
    "too_complex": "too_complex",
    "customer_service": "poor_support",
}
# Feedback that cannot decide a bucket on its own: ask the question instead of guessing.
# (too_expensive could be pricing or unseen value; unused could be onboarding or no need.)
UNDECIDED_FEEDBACK_QUESTIONS = {
    "too_expensive": "Is the price itself the problem, or did the plan not deliver enough value "
    "for it? Would a smaller plan fit?",
    "unused": "Did you stop using it because getting started was hard, or because the need "
    "went away?",
    "switched_service": "Which service did you switch to, and what does it do that we don't?",
    "other": "What made you cancel?",
}
# A comment that points at a missing self-serve path (had to ask support to cancel, etc.).
_SELF_SERVE_HINT = re.compile(
    r"(cancel|unsubscribe|downgrade|billing|invoice)"
    r".*(couldn'?t|could not|can'?t|cannot|no way|how to|where|find|email|support|contact)"
    r"|(couldn'?t|could not|can'?t|cannot|no way|how to|where|find)"
    r".*(cancel|unsubscribe|downgrade)",
    re.IGNORECASE | re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class CancellationReading:
    """How a cancellation's details map to a bucket, with the question when they cannot."""

    classification: str
    question: str | None
    product_gaps: tuple[str, ...]
    because: str


def read_cancellation(sub: Subscription) -> CancellationReading:
    """Map ``cancellation_details`` to a classification; undecidable feedback gets a question."""
    reason, feedback, comment = (
        sub.cancellation_reason,
        sub.cancellation_feedback,
        sub.cancellation_comment,
    )
    if reason == "payment_failed":
        return CancellationReading(
            "failed_payment",
            None,
            ("no_dunning_emails",),
            "Stripe canceled it after failed payments",
        )
    if reason == "payment_disputed":
        # Stripe canceled it because a payment was disputed (cancellation_details.reason,
        # API reference, Subscription object): not the customer's cancellation, so no
        # "why are you leaving" — the dispute case carries the classification and the action.
        return CancellationReading(
            "unclassified",
            None,
            (),
            "Stripe canceled it because a payment was disputed (see the dispute case)",
        )
    if feedback in PRODUCT_FAILURE_FEEDBACK:
        return CancellationReading(
            "product_failure",
            None,
            (PRODUCT_FAILURE_FEEDBACK[feedback],),
            f"the customer's feedback is {feedback}",
        )
    if comment and _SELF_SERVE_HINT.search(comment):
        return CancellationReading(
            "missing_self_serve",
            None,
            ("no_cancel_flow",),
            f"the comment ({comment!r}) says they could not manage it themselves",
        )
    question = UNDECIDED_FEEDBACK_QUESTIONS.get(feedback or "", "Why are you leaving?")
    if comment:
        question = f"{question} (they wrote: {comment!r})"
    because = f"the feedback is {feedback}" if feedback else "no cancellation feedback was given"
    return CancellationReading("unclassified", question, (), because)


def card_expires_at(month: int | None, year: int | None) -> int | None:
    """The first second after a card's expiry month (cards work through their last month)."""
    if month is None or year is None or not 1 <= month <= 12 or not 1970 <= year <= 9998:
        return None
    next_month = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return int(next_month.timestamp())


def trial_notice_opens(trial_end: int, config: RulesConfig) -> int:
    """When a trial ending without a payment method becomes a signal: ``trial_ending_days``
    before its end, never later than Stripe's own notice (less the leeway above)."""
    window = max(config.trial_ending_days * DAY, STRIPE_TRIAL_NOTICE_SECONDS)
    return trial_end - window - TRIAL_NOTICE_LEEWAY_SECONDS


def card_notice_opens(expires_at: int, config: RulesConfig) -> int:
    """When a card that stops working at ``expires_at`` becomes a signal."""
    return expires_at - config.card_expiring_days * DAY


def renewal_card_expiry(ctx: RuleContext, customer_id: str) -> int | None:
    """When the first card renewals of this customer's live subscriptions will use stops
    working, if known (for the clock's due times)."""
    expiries = [
        card[0]
        for sub in ctx.snapshot.subscriptions
        if sub.is_live and sub.customer_id == customer_id
        if (card := _current_card(ctx, sub)) is not None
    ]
    return min(expiries, default=None)


def renewal_payment_method_id(ctx: RuleContext, sub: Subscription) -> str | None:
    """The instrument Stripe charges for ``sub``'s renewals, in Stripe's own order:
    subscription.default_payment_method, subscription.default_source, the customer's
    invoice_settings.default_payment_method, then customer.default_source ("Automate payment
    retries", Payment method ordering: https://docs.stripe.com/billing/revenue-recovery/smart-retries).
    """
    if sub.default_payment_method:
        return sub.default_payment_method
    customer = ctx.customer(sub.customer_id)
    if customer is None:
        return None
    return customer.default_payment_method_id or customer.default_source_id


def _card_label(brand: str | None, last4: str | None) -> str:
    return f"{brand or 'card'} ending {last4 or '????'}"


def _current_card(ctx: RuleContext, sub: Subscription) -> tuple[int, str, str] | None:
    """(expires_at, label, event id) of the card renewals will use, not merely the newest one.

    With a default known, only that instrument counts (a saved card details event, else a
    charge made with it); unknown details mean no signal rather than another card's expiry.
    With no default known (old data), the card of the customer's latest successful charge,
    else the customer's only saved card (with several, guessing would be the old bug).
    """
    method_id = renewal_payment_method_id(ctx, sub)
    charges = sorted(
        (
            c
            for c in ctx.snapshot.charges
            if c.customer_id == sub.customer_id and c.status == "succeeded"
        ),
        key=lambda c: (c.created or 0, c.id),
        reverse=True,
    )
    if method_id is not None:
        method = next((m for m in ctx.snapshot.payment_methods if m.id == method_id), None)
        if method is not None and not method.detached:
            expires = card_expires_at(method.card_exp_month, method.card_exp_year)
            if expires is not None:
                return expires, _card_label(method.card_brand, method.card_last4), method.event_id
        charges = [c for c in charges if c.payment_method_id == method_id]
    for charge in charges[:1]:
        expires = card_expires_at(charge.card_exp_month, charge.card_exp_year)
        if expires is not None:
            return expires, _card_label(charge.card_brand, charge.card_last4), charge.event_id
    saved = [
        m
        for m in ctx.snapshot.payment_methods
        if m.customer_id == sub.customer_id and not m.detached
    ]
    if method_id is None and not charges and len(saved) == 1:
        (only,) = saved
        expires = card_expires_at(only.card_exp_month, only.card_exp_year)
        if expires is not None:
            return expires, _card_label(only.card_brand, only.card_last4), only.event_id
    return None


def find_churn_state(ctx: RuleContext) -> list[Finding]:
    """One finding per live subscription with any state-derived churn signal; a subscription
    billing-ops itself set to cancel is no customer on the way out (its case says why)."""
    findings = []
    for sub in ctx.snapshot.subscriptions:
        if sub.is_live and sub.customer_id and sub.id not in ctx.snapshot.canceled_by_billing_ops:
            finding = _state_finding(ctx, sub, sub.customer_id)
            if finding is not None:
                findings.append(finding)
    return findings


def _state_finding(ctx: RuleContext, sub: Subscription, customer_id: str) -> Finding | None:
    config = ctx.config
    signals: list[str] = []
    evidence: list[str] = [sub.event_id]
    notes: list[str] = []
    cancel_scheduled = sub.cancel_at_period_end or sub.cancel_at is not None
    if cancel_scheduled:
        signals.append("cancel_at_period_end" if sub.cancel_at_period_end else "cancel_at")
        ends = sub.cancel_at or sub.current_period_end
        notes.append(f"it is set to cancel at {format_time(ends)}")
    customer = ctx.customer(customer_id)
    trial_end = sub.trial_end
    if (
        not cancel_scheduled
        and sub.status == "trialing"
        and trial_end is not None
        and trial_notice_opens(trial_end, config) <= ctx.as_of < trial_end
        and customer is not None
        and customer.has_default_payment_method is False
        and sub.default_payment_method is None
    ):
        signals.append("trial_ending_no_payment_method")
        evidence.append(customer.event_id)
        notes.append(f"its trial ends {format_time(trial_end)} with no payment method on file")
    card = _current_card(ctx, sub)
    if card is not None and ctx.as_of >= card_notice_opens(card[0], config):
        expires, label, event_id = card
        signals.append("card_expired" if expires <= ctx.as_of else "card_expiring")
        evidence.append(event_id)
        notes.append(f"the {label} expires {format_time(expires)}")
    if not signals:
        return None
    mrr = sub.monthly_amount_after_trial_minor  # a trial bills 0 now; this is what is at risk
    verify = ctx.verify_contract(sub)
    if cancel_scheduled:
        reading = read_cancellation(sub)
        action = RecommendedAction(
            type="contact_customer",
            target=customer_id,
            reversible=True,
            steps=with_contract_check(
                (
                    "Ask the customer what would make them stay (keep the cancellation as is)",
                    "Only with their consent, turn cancel_at_period_end off",
                    "Document the reason on the case",
                    f"Follow up before {format_time(sub.cancel_at or sub.current_period_end)}",
                ),
                verify,
            ),
        )
        classification, question, gaps = (
            reading.classification,
            reading.question,
            reading.product_gaps,
        )
        why = f"{reading.because}, so the safest move is to learn why before the period ends."
    else:
        action = RecommendedAction(
            type="send_portal_link",
            target=customer_id,
            reversible=True,
            steps=with_contract_check(
                (
                    "Send the customer a billing portal link to add or update a payment method",
                    "Do not change the subscription",
                    "Document the outreach on the case",
                    "Follow up before the next payment is due",
                ),
                verify,
            ),
        )
        classification, question, gaps = "failed_payment", None, ()
        why = "so a portal link now prevents a failed payment later."
    return Finding(
        kind="churn_signal",
        classification=classification,
        severity=severity_for_mrr(mrr, config, currency=sub.currency),
        customer_id=customer_id,
        subjects=(sub.id,),
        evidence=evidence_of(*evidence),
        revenue_impact=RevenueImpact(sub.currency, 0, mrr),
        recommended_action=action,
        reasoning=f"Subscription {sub.id} ({format_money(mrr, sub.currency)}/month): "
        f"{'; '.join(notes)}; {why}",
        question=question,
        verify_contract=verify,
        product_gaps=gaps,
        signals=tuple(signals),
        auto_clear=True,
    )


def find_churn_events(ctx: RuleContext, event: BillingEvent) -> list[Finding]:
    """Event-derived churn: a cancellation that happened, or a downgrade (previous_attributes).
    A cancellation billing-ops executed (an operator's action on a case) is not churn."""
    if not event.type.startswith("customer.subscription.") or not isinstance(
        event.object.get("id"), str
    ):
        return []
    sub = parse_subscription(event.object, event.id)
    if sub.customer_id is None:
        return []
    findings = []
    became_canceled = event.type == "customer.subscription.deleted" or (
        sub.status == "canceled" and "status" in event.previous_attributes
    )
    if became_canceled and unpaid_first_invoice(ctx, sub) is None:
        # A subscription canceled before its first payment never started: not churn, an
        # incomplete checkout (rules.checkout). One billing-ops canceled is no churn either.
        if sub.id not in ctx.snapshot.canceled_by_billing_ops:
            findings.append(_canceled_finding(ctx, sub, sub.customer_id))
    elif event.type == "customer.subscription.pending_update_expired":
        findings.append(_pending_update_expired_finding(ctx, event, sub, sub.customer_id))
    elif event.type == "customer.subscription.updated":
        downgrade = _downgrade_finding(ctx, event, sub, sub.customer_id)
        if downgrade is not None:
            findings.append(downgrade)
    return findings


def find_cancellations_shown_late(ctx: RuleContext, event: BillingEvent) -> list[Finding]:
    """The churn of a cancellation billing-ops first read as "never started", drawn again when
    the evidence that the subscription did start arrives after the cancellation.

    Stripe does not deliver events in the order it generated them ("Webhooks",
    docs.stripe.com/webhooks#event-ordering): a subscription's cancellation can be evaluated
    before the first invoice's payment (or its second invoice) is stored, and then
    ``find_churn_events`` reads it as canceled before its first payment and draws no churn.
    An event about the subscription (its own, or one of its invoices') generated before the
    subscription ended is such late evidence; when the subscription now shows it started
    (``rules.checkout.started``), the cancellation's churn is what in-order delivery found.
    Timestamps are whole seconds (API reference, Event object, ``created``: "Measured in
    seconds since the Unix epoch", docs.stripe.com/api/events/object), so an event of the
    end's own second may precede it and counts as late evidence. Events of a later second (a
    later invoice update) never re-draw anything; a same-second one re-draws the churn
    in-order delivery already drew, which leaves an open case unchanged and never reopens an
    operator's resolution (``rules.case_decisions``)."""
    sub = ctx.snapshot.subscription(_subscription_of(ctx, event))
    if sub is None or sub.status != "canceled" or sub.customer_id is None:
        return []
    ended = sub.ended_at if sub.ended_at is not None else sub.canceled_at
    if ended is None or event.created > ended:
        return []
    if sub.id in ctx.snapshot.canceled_by_billing_ops:
        return []
    if not started(sub, ctx.invoices_of(sub.id)):
        return []
    return [_canceled_finding(ctx, sub, sub.customer_id)]


def _subscription_of(ctx: RuleContext, event: BillingEvent) -> str | None:
    """The subscription an event is about: its own object, or its invoice's subscription."""
    object_id = event.object.get("id")
    if not isinstance(object_id, str):
        return None
    if event.type.startswith("customer.subscription."):
        return object_id
    if event.type.startswith("invoice."):
        invoice = ctx.snapshot.invoice(object_id)
        return invoice.subscription_id if invoice is not None else None
    return None


def _canceled_finding(ctx: RuleContext, sub: Subscription, customer_id: str) -> Finding:
    reading = read_cancellation(sub)
    mrr = sub.monthly_amount_minor
    verify = ctx.verify_contract(sub)
    signals = ["subscription_canceled"]
    if sub.cancellation_reason:
        signals.append(f"cancellation_reason:{sub.cancellation_reason}")
    if sub.cancellation_feedback:
        signals.append(f"feedback:{sub.cancellation_feedback}")
    return Finding(
        kind="churn_signal",
        classification=reading.classification,
        severity=severity_for_mrr(mrr, ctx.config, currency=sub.currency),
        customer_id=customer_id,
        subjects=(sub.id,),
        evidence=evidence_of(sub.event_id),
        revenue_impact=RevenueImpact(sub.currency, 0, mrr),
        recommended_action=RecommendedAction(
            type="contact_customer",
            target=customer_id,
            reversible=True,
            steps=with_contract_check(
                (
                    "Do not refund or reactivate anything unasked",
                    "Ask the customer for the reason (or confirm the one they gave)",
                    "Record the product gap for the product team",
                    "Document the conversation on the case",
                ),
                verify,
            ),
        ),
        reasoning=(
            f"Subscription {sub.id} ({format_money(mrr, sub.currency)}/month) was canceled "
            f"and {reading.because}, so learning the cause is the only safe action left."
        ),
        question=reading.question,
        verify_contract=verify,
        product_gaps=reading.product_gaps,
        signals=tuple(signals),
        auto_clear=False,
    )


def _pending_update_expired_finding(
    ctx: RuleContext, event: BillingEvent, sub: Subscription, customer_id: str
) -> Finding:
    """An update (an upgrade, more seats) that waited for its payment until ``expires_at``
    and was discarded: the customer still has the old plan ("Pending updates",
    https://docs.stripe.com/billing/subscriptions/pending-updates)."""
    pending = event.previous_attributes.get("pending_update")
    wanted = parse_subscription_items(
        {"items": {"data": pending.get("subscription_items") or []}}
        if isinstance(pending, dict)
        else {}
    )
    mrr_wanted = monthly_total(wanted) if wanted else None
    mrr_now = monthly_total(sub.items)  # list prices on both sides, like for like
    currency = sub.currency
    lost = max(mrr_wanted - mrr_now, 0) if mrr_wanted is not None and mrr_now is not None else None
    verify = ctx.verify_contract(sub)
    return Finding(
        kind="churn_signal",
        classification="failed_payment",
        severity=severity_for_mrr(lost, ctx.config, floor="medium", currency=currency),
        customer_id=customer_id,
        subjects=(sub.id,),
        evidence=evidence_of(event.id),
        revenue_impact=RevenueImpact(currency, 0, lost),
        recommended_action=RecommendedAction(
            type="contact_customer",
            target=customer_id,
            reversible=True,
            steps=with_contract_check(
                (
                    "Tell the customer their change did not apply because its payment did not "
                    "complete in time: they are still on their previous plan",
                    "Offer to make the change again once they have a working payment method",
                    "Do not change the subscription without them",
                    "Document the outreach on the case",
                ),
                verify,
            ),
        ),
        reasoning=(
            f"Subscription {sub.id}'s pending update "
            + (f"(to {format_money(mrr_wanted, currency)} a month) " if mrr_wanted else "")
            + "expired unpaid, so the customer did not get what they asked for and may not "
            "know it."
        ),
        question=None,
        verify_contract=verify,
        product_gaps=(),
        signals=("pending_update_expired",),
        auto_clear=False,
    )


def _downgrade_finding(
    ctx: RuleContext, event: BillingEvent, sub: Subscription, customer_id: str
) -> Finding | None:
    previous = event.previous_attributes
    if not any(key in previous for key in ("items", "plan", "quantity")):
        return None
    if "items" in previous:
        before = parse_subscription_items(previous)
    else:
        before = parse_subscription_items(
            {
                "plan": previous.get("plan", event.object.get("plan")),
                "quantity": previous.get("quantity", event.object.get("quantity")),
            }
        )
    if not before:
        return None
    # List prices on both sides (previous_attributes carries no discount): like for like.
    mrr_before = monthly_total(before)
    mrr_after = monthly_total(sub.items)
    price_down = mrr_before is not None and mrr_after is not None and mrr_after < mrr_before
    seats_before = sum(item.quantity for item in before)
    seats_after = sub.total_quantity
    to_annual = sub.is_annual and not any(item.interval == "year" for item in before)
    if to_annual or not (price_down or seats_after < seats_before):
        return None
    signals = ["downgrade"]
    if seats_after < seats_before:
        signals.append("seat_reduction")
    if price_down and seats_after >= seats_before:
        signals.append("price_down")
    lost = None if mrr_before is None or mrr_after is None else max(mrr_before - mrr_after, 0)
    verify = (
        ctx.verify_contract(sub) or seats_before > 1 or any(i.interval == "year" for i in before)
    )
    currency = sub.currency
    return Finding(
        kind="churn_signal",
        classification="unclassified",
        severity=severity_for_mrr(lost, ctx.config, currency=currency),
        customer_id=customer_id,
        subjects=(sub.id,),
        evidence=evidence_of(event.id),
        revenue_impact=RevenueImpact(currency, 0, lost),
        recommended_action=RecommendedAction(
            type="contact_customer",
            target=customer_id,
            reversible=True,
            steps=with_contract_check(
                (
                    "Keep the downgrade as the customer chose it",
                    "Ask what made the smaller plan enough",
                    "Document the answer and any product gap on the case",
                ),
                verify,
            ),
        ),
        reasoning=(
            f"Subscription {sub.id} went from {format_money(mrr_before, currency)} to "
            f"{format_money(mrr_after, currency)} a month (seats {seats_before} -> {seats_after}),"
            " and a downgrade alone does not say why, so ask before assuming."
        ),
        question="What made the smaller plan enough: fewer people, the price, or features the "
        "larger plan lacked?",
        verify_contract=verify,
        product_gaps=(),
        signals=tuple(signals),
        auto_clear=False,
    )
