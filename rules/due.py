"""When a person's findings can change with time alone: the clock's schedule, as a pure function.

Most findings change only when an event arrives. A few depend on ``now`` too: a trial entering
its last days, a card nearing or passing its expiry, a dispute's evidence deadline, an invoice
whose payment date passes, a bank debit left unsettled. ``next_due`` returns the first such
instant after ``now``, so the worker can index it and re-evaluate the person then, instead of
scanning everyone. Evaluating at a due time that changes nothing is harmless; missing one is
not, so every instant a rule compares ``as_of`` against is listed here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from rules.churn import card_notice_opens, renewal_card_expiry, trial_notice_opens
from rules.config import RulesConfig
from rules.context import RuleContext
from rules.deadlines import evidence_deadline_thresholds
from rules.disputes import OPEN_DISPUTE_STATUSES
from rules.events import BillingEvent, occasion_event
from rules.snapshot import BillingSnapshot

#: The type of the event the clock evaluates with: no event rule reacts to it.
CLOCK_EVENT_TYPE = "billing_ops.clock"


class DueReason(StrEnum):
    """Why a person is due for re-evaluation (stored with the due time, shown in logs)."""

    TRIAL_NOTICE = "trial_notice"  # a trial without a payment method enters its last days
    TRIAL_END = "trial_end"  # the trial is over
    CARD_EXPIRING = "card_expiring"  # the renewal card enters its last card_expiring_days
    CARD_EXPIRED = "card_expired"  # the renewal card stops working
    DISPUTE_EVIDENCE_DUE = "dispute_evidence_due"  # evidence due soon, or due_by passes
    INVOICE_PAYMENT_DUE = "invoice_payment_due"  # an open invoice's next attempt passes
    CHECKOUT_PAYMENT_STALE = "checkout_payment_stale"  # an unpaid async checkout waited too long


@dataclass(frozen=True, slots=True, order=True)
class Due:
    """One instant (Unix seconds) at which the person's findings may change, and why."""

    at: int
    reason: DueReason
    subject: str


def next_due(snapshot: BillingSnapshot, now: int, config: RulesConfig) -> Due | None:
    """The earliest time-driven instant strictly after ``now`` (``None``: nothing pending)."""
    ctx = RuleContext.build(snapshot, max(now, snapshot.as_of), config)
    return min((due for due in due_times(ctx) if due.at > ctx.as_of), default=None)


def due_times(ctx: RuleContext) -> Iterator[Due]:
    """Every instant at which a rule's comparison against ``as_of`` flips, past or future."""
    config = ctx.config
    customers_with_live_subscriptions: set[str] = set()
    for sub in ctx.snapshot.subscriptions:
        if not sub.is_live or sub.customer_id is None:
            continue  # an incomplete first payment needs no clock: Stripe expires it (23 h)
        customers_with_live_subscriptions.add(sub.customer_id)
        if sub.status == "trialing" and sub.trial_end is not None:
            yield Due(trial_notice_opens(sub.trial_end, config), DueReason.TRIAL_NOTICE, sub.id)
            yield Due(sub.trial_end, DueReason.TRIAL_END, sub.id)
    for customer_id in sorted(customers_with_live_subscriptions):
        expires = renewal_card_expiry(ctx, customer_id)
        if expires is not None:
            yield Due(card_notice_opens(expires, config), DueReason.CARD_EXPIRING, customer_id)
            yield Due(expires, DueReason.CARD_EXPIRED, customer_id)
    for dispute in ctx.snapshot.disputes:
        if dispute.status in OPEN_DISPUTE_STATUSES:
            for instant in evidence_deadline_thresholds(dispute):
                yield Due(instant, DueReason.DISPUTE_EVIDENCE_DUE, dispute.id)
    for invoice in ctx.snapshot.invoices:
        if invoice.status == "open" and invoice.next_payment_attempt is not None:
            yield Due(invoice.next_payment_attempt, DueReason.INVOICE_PAYMENT_DUE, invoice.id)
    settle = config.async_payment_settle_seconds
    for session in ctx.snapshot.checkout_sessions:
        unpaid = session.status == "complete" and session.payment_status == "unpaid"
        if unpaid and not session.async_payment_failed:
            stale_at = (session.created or 0) + settle + 1
            yield Due(stale_at, DueReason.CHECKOUT_PAYMENT_STALE, session.id)


def clock_event(now: int) -> BillingEvent:
    """The event a clock evaluation runs with: it carries no object, so only state rules act."""
    return occasion_event(CLOCK_EVENT_TYPE, now)


__all__ = ["CLOCK_EVENT_TYPE", "Due", "DueReason", "clock_event", "due_times", "next_due"]
