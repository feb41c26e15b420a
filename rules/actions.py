"""What an operator may do from a case: a requested action becomes an exact plan, or a refusal.

Pure like every rule: the case's finding, the person's snapshot and ``as_of`` in, an
``ActionPlan`` (what, which ids, the money, whether it can be undone, the contract shape to
confirm) or a ``Refusal`` (why not) out. The worker executes plans through Stripe.

The finding guard (``rules.guard``) is the one place that knows which refunds and cancellations
harm the customer: a requested action is run through it as if a finding recommended it, and any
rewrite becomes the refusal. The checks only an executed action needs (the money, the state of
the object right now) live here.

Stripe facts relied on: a refund's ``amount`` "can refund only up to the remaining, unrefunded
amount of the charge" (docs.stripe.com/api/refunds/create); ``cancel_at_period_end`` keeps the
subscription until the period ends and setting it back to false before then undoes the
cancellation, while ``DELETE /v1/subscriptions/:id`` ends it at once and cannot be undone
(docs.stripe.com/billing/subscriptions/cancel); ``POST /v1/invoices/:id/pay`` pays an ``open``
invoice only (docs.stripe.com/api/invoices/pay), and Stripe stops retrying an invoice whose
subscription went ``unpaid``, so paying it is an operator's move; a billing-portal session
(``POST /v1/billing_portal/sessions``, docs.stripe.com/api/customer_portal/sessions/create) is
a short-lived page where the customer changes their card, while a payment that needs 3-D
Secure, or a hard decline, is settled on the invoice's ``hosted_invoice_url`` (the page
Stripe's own ``invoice.payment_action_required`` points the customer to).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from rules.context import RuleContext
from rules.findings import Finding, RecommendedAction
from rules.formatting import format_money
from rules.guard import guard_findings, refund_targets
from rules.model import Subscription

#: A refund for these classifications is never an operator's one-click action: seats bought on
#: purpose, or a case nobody has understood yet.
NO_REFUND_CLASSIFICATIONS = frozenset({"team_purchase", "unclassified"})


def action_mode(type_: ActionType, at_period_end: bool, channel: LinkChannel | None = None) -> str:
    """The action as named in the idempotency key and audit (period-end cancel differs, and
    so does a link emailed from one printed)."""
    if type_ is ActionType.SEND_PAYMENT_LINK:
        return f"{type_}_{channel or LinkChannel.EMAIL}"
    return f"{type_}_at_period_end" if at_period_end else str(type_)


class ActionType(StrEnum):
    """The actions billing-ops executes through Stripe (or records, for ``no_action``)."""

    CANCEL_SUBSCRIPTION = "cancel_subscription"
    REFUND_CHARGE = "refund_charge"
    REMOVE_SCHEDULED_CANCEL = "remove_scheduled_cancel"
    PAY_INVOICE = "pay_invoice"
    SEND_PAYMENT_LINK = "send_payment_link"
    NO_ACTION = "no_action"


class LinkChannel(StrEnum):
    """How a payment link reaches the customer: emailed by billing-ops, or printed for the
    operator to paste into their own reply."""

    EMAIL = "email"
    PRINT = "print"


class PaymentLinkKind(StrEnum):
    """Which page the link opens (see the module docstring)."""

    BILLING_PORTAL = "billing_portal"
    HOSTED_INVOICE = "hosted_invoice"


#: The finding's recommendation when the customer must pay on the invoice page itself.
INVOICE_LINK_ACTION = "send_invoice_link"


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """What the operator asked: an action, optionally its target and refund amount."""

    type: ActionType
    target: str | None = None
    amount_minor: int | None = None
    at_period_end: bool = False
    channel: LinkChannel | None = None

    @property
    def mode(self) -> str:
        return action_mode(self.type, self.at_period_end, self.channel)


@dataclass(frozen=True, slots=True)
class ActionPlan:
    """Exactly what executing will do; ``mode`` tells cancel-now from cancel-at-period-end."""

    type: ActionType
    target: str | None
    customer_id: str
    amount_minor: int | None
    currency: str | None
    at_period_end: bool
    reversible: bool
    #: Annual term, seat count, prorations: shown, and confirmed before executing.
    contract_shape: tuple[str, ...]
    summary: str
    undo: str | None
    channel: LinkChannel | None = None
    link: PaymentLinkKind | None = None

    @property
    def needs_contract_confirmation(self) -> bool:
        return bool(self.contract_shape)

    @property
    def mode(self) -> str:
        return action_mode(self.type, self.at_period_end, self.channel)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why the requested action must not be taken."""

    reason: str


def plan_action(ctx: RuleContext, finding: Finding, request: ActionRequest) -> ActionPlan | Refusal:
    """The plan for ``request`` on the case of ``finding``, or why it is refused."""
    if request.at_period_end and request.type is not ActionType.CANCEL_SUBSCRIPTION:
        return Refusal("only a cancellation can wait for the period end")
    if request.channel is not None and request.type is not ActionType.SEND_PAYMENT_LINK:
        return Refusal("only a payment link is emailed or printed")
    if request.type is ActionType.SEND_PAYMENT_LINK:
        return _plan_link(ctx, finding, request)
    if request.type is ActionType.NO_ACTION:
        return _plan(finding, request, None, None, None, reversible=True, shape=())
    if request.type is ActionType.REFUND_CHARGE:
        return _plan_refund(ctx, finding, request)
    if request.type is ActionType.PAY_INVOICE:
        return _plan_pay(ctx, finding, request)
    return _plan_subscription(ctx, finding, request)


def _plan(
    finding: Finding,
    request: ActionRequest,
    target: str | None,
    amount: int | None,
    currency: str | None,
    *,
    reversible: bool,
    shape: tuple[str, ...],
    undo: str | None = None,
) -> ActionPlan:
    money = f" ({format_money(amount, currency)})" if amount is not None else ""
    what = str(request.type).replace("_", " ")
    if request.at_period_end:
        what += " at period end"
    summary = f"{what} {target}{money}" if target else what
    return ActionPlan(
        request.type,
        target,
        finding.customer_id,
        amount,
        currency,
        request.at_period_end,
        reversible,
        shape,
        summary,
        undo,
    )


def _guarded(ctx: RuleContext, finding: Finding, type_: str, target: str) -> Refusal | None:
    """The guard's verdict on this finding recommending exactly this action."""
    proposed = replace(
        finding,
        recommended_action=RecommendedAction(type_, target, False, ()),
        guard_notes=(),
    )
    (checked,) = guard_findings(ctx, (proposed,))
    return Refusal("; ".join(checked.guard_notes)) if checked.guard_notes else None


def contract_shape(ctx: RuleContext, sub: Subscription | None) -> tuple[str, ...]:
    """What makes a contract more than a plain monthly seat (``RuleContext.verify_contract``)."""
    if sub is None or not ctx.verify_contract(sub):
        return ()
    shape = []
    if sub.is_annual:
        shape.append(f"{sub.id} bills yearly")
    if sub.max_quantity > 1:
        shape.append(f"{sub.id} has {sub.total_quantity} seats")
    if any(ctx.billing_reason(i) == "subscription_update" for i in ctx.invoices_of(sub.id)):
        shape.append(f"{sub.id} has prorated invoices (it was changed mid-period)")
    return tuple(shape)


def _plan_refund(
    ctx: RuleContext, finding: Finding, request: ActionRequest
) -> ActionPlan | Refusal:
    if finding.classification in NO_REFUND_CLASSIFICATIONS:
        return Refusal(f"no refund from a {finding.classification} case")
    snapshot = ctx.snapshot
    target = request.target
    if target is None:
        targets = sorted(refund_targets(finding, [c.id for c in snapshot.charges]))
        if len(targets) != 1:
            return Refusal("the case names no single charge to refund: give the charge id")
        target = targets[0]
    charge = snapshot.charge(target)
    if charge is None:
        return Refusal(f"{target} is not a charge billing-ops knows for this customer")
    if not charge.paid or charge.status != "succeeded":
        return Refusal(f"{charge.id} did not succeed ({charge.status}): nothing to refund")
    refused = _guarded(ctx, finding, "refund_charge", charge.id)
    if refused:
        return refused
    unrefunded = charge.amount - charge.amount_refunded
    amount = unrefunded if request.amount_minor is None else request.amount_minor
    if not 0 < amount <= unrefunded:
        return Refusal(
            f"{charge.id} has {format_money(unrefunded, charge.currency)} left to refund; "
            f"{format_money(amount, charge.currency)} is not a valid refund of it"
        )
    invoice = snapshot.invoice(charge.invoice_id) or next(
        (i for i in snapshot.invoices if ctx.charge_of_invoice(i) == charge), None
    )
    sub = snapshot.subscription(invoice.subscription_id) if invoice else None
    return _plan(
        finding,
        request,
        charge.id,
        amount,
        charge.currency,
        reversible=False,
        shape=contract_shape(ctx, sub),
    )


def _case_invoice(ctx: RuleContext, finding: Finding) -> str | None:
    """The invoice a case is about: a subject, else a subject subscription's latest."""
    snapshot = ctx.snapshot
    named = next((s for s in finding.subjects if snapshot.invoice(s)), None)
    subs = (s for s in map(snapshot.subscription, finding.subjects) if s)
    return named or next((s.latest_invoice_id for s in subs if s.latest_invoice_id), None)


def _plan_pay(ctx: RuleContext, finding: Finding, request: ActionRequest) -> ActionPlan | Refusal:
    target = request.target or _case_invoice(ctx, finding)
    invoice = ctx.snapshot.invoice(target)
    if invoice is None:
        return Refusal("the case names no invoice to pay: give the invoice id")
    if invoice.status != "open":
        return Refusal(f"{invoice.id} is {invoice.status}, only an open invoice can be paid")
    sub = ctx.snapshot.subscription(invoice.subscription_id)
    return _plan(
        finding,
        request,
        invoice.id,
        invoice.amount_remaining,
        invoice.currency,
        reversible=False,
        shape=contract_shape(ctx, sub),
    )


def _plan_subscription(
    ctx: RuleContext, finding: Finding, request: ActionRequest
) -> ActionPlan | Refusal:
    action = finding.recommended_action
    target = request.target
    if target is None and action.type == "cancel_subscription":
        target = action.target
    if target is None:
        subs = [s for s in finding.subjects if s.startswith("sub_")]
        target = subs[0] if len(subs) == 1 else None
    sub = ctx.snapshot.subscription(target)
    if sub is None:
        return Refusal("the case names no single subscription: give the subscription id")
    if not sub.is_live:
        return Refusal(f"{sub.id} is {sub.status}: it no longer bills")
    shape = contract_shape(ctx, sub)
    if request.type is ActionType.REMOVE_SCHEDULED_CANCEL:
        if not sub.cancel_at_period_end:
            return Refusal(f"{sub.id} has no cancellation scheduled")
        return _plan(finding, request, sub.id, None, None, reversible=True, shape=shape)
    if sub.cancel_at_period_end and request.at_period_end:
        return Refusal(f"{sub.id} is already set to cancel at period end")
    refused = _guarded(ctx, finding, "cancel_subscription", sub.id)
    if refused:
        return refused
    if request.at_period_end:
        undo = f"until the period ends, 'remove_scheduled_cancel {sub.id}' undoes it"
        return _plan(finding, request, sub.id, None, None, reversible=True, shape=shape, undo=undo)
    return _plan(finding, request, sub.id, None, None, reversible=False, shape=shape)


def _plan_link(ctx: RuleContext, finding: Finding, request: ActionRequest) -> ActionPlan | Refusal:
    """The case's unpaid invoice (named, a subject, or a subject subscription's latest) gets
    its hosted page when it must be paid there (3-D Secure, hard decline, retries over) and
    the billing portal otherwise; a case with no unpaid invoice gets the portal."""
    snapshot = ctx.snapshot
    channel = request.channel or LinkChannel.EMAIL
    target = request.target
    invoice = snapshot.invoice(target) if target and target.startswith("in_") else None
    if target and invoice is None and target != finding.customer_id:
        return Refusal(f"{target} is neither an invoice of this case nor its customer")
    if target is None:
        invoice = snapshot.invoice(_case_invoice(ctx, finding))
    if invoice is not None and (
        invoice.status in ("paid", "void") or invoice.amount_remaining <= 0
    ):
        if request.target:
            return Refusal(f"{invoice.id} is {invoice.status}: nothing is owed on it")
        invoice = None
    if not finding.customer_id:
        return Refusal("the case names no customer to send a link to")
    on_invoice_page = invoice is not None and (
        finding.recommended_action.type == INVOICE_LINK_ACTION or invoice.requires_action
    )
    link = PaymentLinkKind.HOSTED_INVOICE if on_invoice_page else PaymentLinkKind.BILLING_PORTAL
    chosen = invoice.id if invoice is not None and on_invoice_page else finding.customer_id
    plan = _plan(
        finding,
        replace(request, channel=channel),
        chosen,
        invoice.amount_remaining if invoice is not None else None,
        invoice.currency if invoice is not None else None,
        reversible=True,
        shape=(),
    )
    how = "email it to the customer" if channel is LinkChannel.EMAIL else "print it to paste"
    page = "the hosted invoice page" if on_invoice_page else "a billing-portal session"
    return replace(
        plan,
        channel=channel,
        link=link,
        summary=f"send payment link ({page}) for {chosen}: {how}",
    )
