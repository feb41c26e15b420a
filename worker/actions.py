"""Operators' actions on a case: planned by ``rules.actions``, executed through Stripe once,
every step in the ``action_audit`` table.

Once means: the Stripe call carries an idempotency key derived from the case, the action and
its target ("Stripe's idempotency works by saving the resulting status code and body of the
first request made for any given idempotency key … Subsequent requests with the same key
return the same result", docs.stripe.com/api/idempotent_requests), and an action already
recorded as succeeded under that key is not sent again at all (Stripe may prune keys once
they are 24 hours old; the audit keeps them). A ``pending`` row is written before the call,
so a crash between the call and its record leaves a trace; the next attempt on the case
(``reconcile_pending``) asks Stripe whether the effect happened — the refund carrying the
case in its metadata, the subscription canceled, the invoice paid — and records what it finds
before anything is planned or sent again.

Executing is the one way in for the CLI and the API alike: the contract confirmation (annual,
several seats, prorations) is checked here, not only by the callers.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any

import stripe
import structlog
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from rules import BillingSnapshot, RulesConfig, build_snapshot
from rules.actions import (
    ActionPlan,
    ActionRequest,
    ActionType,
    LinkChannel,
    PaymentLinkKind,
    Refusal,
    action_mode,
    plan_action,
)
from rules.codec import finding_from_json
from rules.context import RuleContext
from rules.formatting import format_money
from worker import metrics
from worker.cases import RESOLVED, _case_row, case_snapshot, iso, rerender
from worker.errors import BillingOpsError, DeliveryError
from worker.lookup import object_type_of
from worker.notifications import email as smtp
from worker.notifications.recovery_emails import EmailConnection
from worker.pii import mask_email
from worker.store.db import read_session, write_session
from worker.store.tables import ActionAuditRow, CaseEntryRow
from worker.stripe_api import fetched_records

log = structlog.get_logger()

PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"


class ActionFailedError(BillingOpsError):
    """Stripe (or the mail server) refused or could not be reached: one line, the case
    unchanged."""


class ContractConfirmationRequiredError(BillingOpsError):
    """The plan's contract shape (annual, seats, prorations) was not confirmed."""


@dataclass(frozen=True)
class Outcome:
    """What executing did: ``repeated`` when the audit already had it done under this key.
    ``link_url`` is the printed payment link (never stored: a portal session is a key to the
    customer's billing)."""

    plan: ActionPlan
    idempotency_key: str
    stripe_request_id: str | None
    detail: str
    repeated: bool
    link_url: str | None = None


@dataclass(frozen=True)
class LinkDelivery:
    """How a payment link is made and sent: the SMTP connection (None: email is not set up)
    and where the billing portal sends the customer back."""

    mail: EmailConnection | None = None
    portal_return_url: str | None = None


def idempotency_key(case_id: int, mode: str, target: str | None) -> str:
    """The same case, action and target always give the same key (and so one Stripe effect)."""
    return f"billing-ops-case-{case_id}-{mode}-{target or 'case'}"


def already_done(engine: Engine, case_id: int, request: ActionRequest) -> str | None:
    """What an action with this request's key did, when the audit has it succeeded: asked
    again, it is answered from the audit before any plan or Stripe call. A printed link is
    never "done": each print is a fresh link."""
    if request.target is None or request.channel is LinkChannel.PRINT:
        return None
    key = idempotency_key(case_id, request.mode, request.target)
    with read_session(engine) as session:
        done = _succeeded(session, key)
        return (done.detail or "") if done is not None else None


def _succeeded(session: Session, key: str) -> ActionAuditRow | None:
    return session.scalars(
        select(ActionAuditRow).where(
            ActionAuditRow.idempotency_key == key, ActionAuditRow.result == SUCCEEDED
        )
    ).first()


def plan_for_case(
    engine: Engine,
    case_id: int,
    request: ActionRequest,
    now: datetime,
    config: RulesConfig,
    client: stripe.StripeClient | None = None,
) -> ActionPlan | Refusal:
    """The plan for ``request`` on the case, from its finding and the person's stored state;
    with a client, the target as Stripe has it now (a refund or a dispute since the last event
    counts, and a charge whose event never arrived is known)."""
    with read_session(engine) as session:
        row = _case_row(session, case_id)
        finding = finding_from_json(json.loads(row.finding))
        snapshot = case_snapshot(session, row)
    if client is not None and request.target:
        snapshot = _with_current(snapshot, client, request.target, int(now.timestamp()))
    ctx = RuleContext.build(snapshot, int(now.timestamp()), config)
    return plan_action(ctx, finding, request)


def _with_current(
    snapshot: BillingSnapshot, client: stripe.StripeClient, target: str, now: int
) -> BillingSnapshot:
    """``snapshot`` with ``target`` replaced by Stripe's current object (its event type is the
    one the webhook parser reads it as); a failed fetch leaves the stored state to decide."""
    services: dict[str, Any] = {
        "charge": client.v1.charges,
        "subscription": client.v1.subscriptions,
        "invoice": client.v1.invoices,
    }
    object_type = object_type_of(target)
    if object_type not in services:
        return snapshot
    try:
        obj = services[object_type].retrieve(target).to_dict()
    except (stripe.StripeError, OSError) as error:
        log.warning("case_action_fetch_failed", target=target, error=type(error).__name__)
        return snapshot
    fresh = build_snapshot(fetched_records(f"{object_type}.updated", obj, now))
    field = f"{object_type}s"
    merged = {o.id: o for o in (*getattr(snapshot, field), *getattr(fresh, field))}
    changes: dict[str, Any] = {field: tuple(merged.values())}
    return dataclasses.replace(snapshot, **changes)


def execute(
    engine: Engine,
    client: stripe.StripeClient | None,
    case_id: int,
    plan: ActionPlan,
    *,
    actor: str,
    now: datetime,
    contract_confirmed: bool = False,
    links: LinkDelivery | None = None,
) -> Outcome:
    """Carry out ``plan`` once; raises ``ContractConfirmationRequiredError`` (nothing done or
    audited) and ``ActionFailedError`` (audited as failed, the case unchanged)."""
    if plan.needs_contract_confirmation and not contract_confirmed:
        raise ContractConfirmationRequiredError(
            "the contract shape needs its own confirmation: " + "; ".join(plan.contract_shape)
        )
    key = idempotency_key(case_id, plan.mode, plan.target)
    printing = plan.channel is LinkChannel.PRINT
    reconcile_pending(engine, client, case_id, now)
    with write_session(engine, [key]) as session:
        _case_row(session, case_id)
        done = None if printing else _succeeded(session, key)
        if done is not None:
            return Outcome(plan, key, done.stripe_request_id, done.detail or "", repeated=True)
        audit = ActionAuditRow(
            case_id=case_id,
            at=now,
            actor=actor,
            action=plan.mode,
            target=plan.target,
            amount_minor=plan.amount_minor,
            currency=plan.currency,
            idempotency_key=key,
            result=PENDING,
        )
        session.add(audit)
        session.flush()
        audit_id = audit.id
    link_url: str | None = None
    try:
        if plan.type is ActionType.SEND_PAYMENT_LINK:
            # Each printed link is a fresh portal session: its own key.
            link_key = f"{key}-{audit_id}" if printing else key
            request_id, detail, link_url = _send_link(
                engine, client, case_id, plan, link_key, links or LinkDelivery()
            )
        else:
            request_id, detail = _call_stripe(client, case_id, plan, key)
    except (stripe.StripeError, OSError, DeliveryError) as error:
        line = _one_line(error)
        _finish(engine, audit_id, FAILED, getattr(error, "request_id", None), line)
        log.warning("case_action_failed", case_id=case_id, action=plan.mode, error=line)
        raise ActionFailedError(f"Stripe refused {plan.summary}: {line}") from None
    except ActionFailedError as error:
        _finish(engine, audit_id, FAILED, None, str(error))
        log.warning("case_action_failed", case_id=case_id, action=plan.mode, error=str(error))
        raise
    _finish(engine, audit_id, SUCCEEDED, request_id, detail)
    _record_success(engine, case_id, plan.type, actor, detail, now)
    log.info("case_action_taken", case_id=case_id, action=plan.mode, request_id=request_id)
    return Outcome(plan, key, request_id, detail, repeated=False, link_url=link_url)


def _record_success(
    engine: Engine, case_id: int, type_: ActionType, actor: str, detail: str, now: datetime
) -> None:
    """What an action that took effect changes on the case: its timeline, its handoff
    re-rendered (``worker.cases.rerender``), and ``no_action`` resolves it."""
    with write_session(engine) as session:
        row = _case_row(session, case_id)
        row.updated_at = now
        kind = row.kind
        if type_ is ActionType.NO_ACTION:
            row.status, row.resolved_at, row.status_by = RESOLVED, now, actor
            row.status_note = "resolved with no action"
        rerender(session, row)
        session.add(
            CaseEntryRow(case_id=case_id, at=now, actor=actor, action="action_taken", note=detail)
        )
    if type_ is ActionType.NO_ACTION:
        metrics.case_resolved_by_operator(kind)


def _call_stripe(
    client: stripe.StripeClient | None, case_id: int, plan: ActionPlan, key: str
) -> tuple[str | None, str]:
    """The one Stripe call of a plan: (Stripe's request id, what it did, for the handoff)."""
    if plan.type is ActionType.NO_ACTION:
        return None, "resolved with no action in Stripe"
    client = _require(client)
    options: Any = {"idempotency_key": key}
    target = plan.target or ""
    obj: Any
    if plan.type is ActionType.REFUND_CHARGE:
        # POST /v1/refunds with the charge and an amount no larger than what is left
        # (docs.stripe.com/api/refunds/create); the case id in the metadata is how an
        # interrupted attempt is found again (``reconcile_pending``).
        params: Any = {
            "charge": target,
            "amount": plan.amount_minor,
            "metadata": {"billing_ops_case": str(case_id)},
        }
        obj = client.v1.refunds.create(params=params, options=options)
        done = _refunded_text(plan.amount_minor, plan.currency, target, obj.id)
    elif plan.type is ActionType.PAY_INVOICE:
        # POST /v1/invoices/:id/pay attempts payment now with the customer's default payment
        # method, outside the normal collection schedule (docs.stripe.com/api/invoices/pay).
        obj = client.v1.invoices.pay(target, options=options)
        done = f"paid invoice {target} ({obj.status})"
    elif plan.type is ActionType.REMOVE_SCHEDULED_CANCEL:
        # cancel_at_period_end=false before the period ends keeps the subscription
        # (docs.stripe.com/billing/subscriptions/cancel).
        obj = client.v1.subscriptions.update(
            target, params={"cancel_at_period_end": False}, options=options
        )
        done = f"removed the scheduled cancellation of {target}"
    elif plan.at_period_end:
        obj = client.v1.subscriptions.update(
            target, params={"cancel_at_period_end": True}, options=options
        )
        done = f"set {target} to cancel at period end (undo: remove_scheduled_cancel {target})"
    else:
        # DELETE /v1/subscriptions/:id ends it at once; it cannot be reactivated
        # (docs.stripe.com/api/subscriptions/cancel).
        obj = client.v1.subscriptions.cancel(target, options=options)
        done = f"canceled {target} now ({obj.status})"
    response = getattr(obj, "last_response", None)
    return getattr(response, "request_id", None), done


def _require(client: stripe.StripeClient | None) -> stripe.StripeClient:
    if client is None:
        raise stripe.AuthenticationError("STRIPE_API_KEY is not set: nothing can be executed")
    return client


def _refunded_text(amount: int | None, currency: str | None, charge: str, refund: str) -> str:
    return f"refunded {format_money(amount, currency)} of {charge} ({refund})"


def _send_link(
    engine: Engine,
    client: stripe.StripeClient | None,
    case_id: int,
    plan: ActionPlan,
    key: str,
    delivery: LinkDelivery,
) -> tuple[str | None, str, str]:
    """Make the link (a portal session, or the invoice's hosted page), then email it or hand
    it back to print: (Stripe's request id, what was done, the link)."""
    client = _require(client)
    target = plan.target or ""
    if plan.channel is LinkChannel.EMAIL and delivery.mail is None:
        raise ActionFailedError("email is not set up (SMTP_URL, EMAIL_FROM): print the link")
    obj: Any
    if plan.link is PaymentLinkKind.HOSTED_INVOICE:
        obj = client.v1.invoices.retrieve(target)
        url = obj.hosted_invoice_url
        if not url:
            raise ActionFailedError(f"{target} has no hosted page (is it finalized?)")
        page = "hosted invoice page"
    else:
        # A portal session is short-lived and made on demand (docs.stripe.com/api/
        # customer_portal/sessions/create): the link is created now, never stored.
        params: dict[str, str] = {"customer": plan.customer_id}
        if delivery.portal_return_url:
            params["return_url"] = delivery.portal_return_url
        obj = client.v1.billing_portal.sessions.create(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": key},
        )
        url = obj.url
        page = "billing-portal link"
    request_id = getattr(getattr(obj, "last_response", None), "request_id", None)
    if plan.channel is LinkChannel.PRINT:
        return request_id, f"printed a {page} for {target} to paste", url
    assert delivery.mail is not None
    message, masked = _link_email(engine, case_id, plan, url, delivery.mail, key)
    delivery.mail.sender.send(message)
    return request_id, f"emailed a {page} for {target} to {masked}", url


def _link_email(
    engine: Engine,
    case_id: int,
    plan: ActionPlan,
    url: str,
    mail: EmailConnection,
    key: str,
) -> tuple[EmailMessage, str]:
    """The payment-link email to the customer's address on file (masked in the audit)."""
    with read_session(engine) as session:
        row = _case_row(session, case_id)
        snapshot = case_snapshot(session, row)
    customer = snapshot.customer(plan.customer_id)
    invoice = snapshot.invoice(plan.target) if plan.target else None
    address = (customer.email if customer else None) or (
        invoice.customer_email if invoice else None
    )
    if not address or not smtp.valid_address(address):
        raise ActionFailedError("the customer has no usable email address on file")
    name = (customer.name if customer else None) or (invoice.customer_name if invoice else None)
    context: dict[str, Any] = {
        "first_name": (name or "").split(" ")[0] or None,
        "amount": format_money(plan.amount_minor, plan.currency) if plan.amount_minor else None,
        "link": url,
        "pay_invoice": plan.link is PaymentLinkKind.HOSTED_INVOICE,
        "authenticate": bool(invoice and invoice.requires_action),
        "sender_name": smtp.sender_name(mail.email_from),
    }
    message = smtp.build_message(
        smtp.render("payment_link", context),
        sender=mail.email_from,
        to=address,
        dedupe_key=key,
    )
    return message, mask_email(address) or "(masked)"


def reconcile_pending(
    engine: Engine, client: stripe.StripeClient | None, case_id: int, now: datetime
) -> list[str]:
    """Settle the case's ``pending`` audit rows (a crash between a Stripe call and its record)
    from Stripe's state: an effect that is there is recorded as succeeded, with the case's
    timeline; one that is not is recorded as failed, so the action can be taken again. Without
    a client, or when Stripe does not answer, the rows stay pending. What was settled, one
    line each."""
    with read_session(engine) as session:
        rows = session.scalars(
            select(ActionAuditRow).where(
                ActionAuditRow.case_id == case_id, ActionAuditRow.result == PENDING
            )
        ).all()
    settled = []
    for row in rows:
        try:
            found = _effect_in_stripe(client, case_id, row)
        except (stripe.StripeError, OSError) as error:
            log.warning("case_action_reconcile_failed", case_id=case_id, error=type(error).__name__)
            continue
        if found is None:
            continue  # cannot tell yet
        took_effect, detail = found
        if took_effect:
            _finish(engine, row.id, SUCCEEDED, None, detail)
            _record_success(engine, case_id, _type_of(row.action), row.actor, detail, now)
        else:
            _finish(engine, row.id, FAILED, None, detail)
        log.info(
            "case_action_reconciled", case_id=case_id, action=row.action, took_effect=took_effect
        )
        settled.append(detail)
    return settled


def _type_of(mode: str) -> ActionType:
    return next(t for t in sorted(ActionType, key=len, reverse=True) if mode.startswith(t))


def _effect_in_stripe(
    client: stripe.StripeClient | None, case_id: int, row: ActionAuditRow
) -> tuple[bool, str] | None:
    """(whether the interrupted action took effect, what to record), None when unknowable."""
    after = "found after an interrupted attempt"
    type_ = _type_of(row.action)
    target = row.target or ""
    if type_ is ActionType.NO_ACTION:
        return False, "interrupted before the case was resolved: taken again"
    if type_ is ActionType.SEND_PAYMENT_LINK:
        return False, "interrupted: whether the link went out is not known"
    if client is None:
        return None
    if type_ is ActionType.REFUND_CHARGE:
        refunds = client.v1.refunds.list(params={"charge": target, "limit": 100}).data
        mine = [r for r in refunds if _case_of(r.to_dict()) == str(case_id)]
        if mine:
            text = _refunded_text(mine[0].amount, mine[0].currency, target, mine[0].id)
            return True, f"{text} ({after})"
        return False, f"interrupted before Stripe refunded {target}: nothing was refunded"
    if type_ is ActionType.PAY_INVOICE:
        invoice = client.v1.invoices.retrieve(target)
        if invoice.status == "paid":
            return True, f"paid invoice {target} (paid; {after})"
        return False, f"interrupted: {target} is {invoice.status}, not paid"
    sub = client.v1.subscriptions.retrieve(target)
    if type_ is ActionType.REMOVE_SCHEDULED_CANCEL:
        if sub.status != "canceled" and not sub.cancel_at_period_end:
            return True, f"removed the scheduled cancellation of {target} ({after})"
        return False, f"interrupted: {target} is still set to cancel"
    if row.action.endswith("_at_period_end"):
        if sub.cancel_at_period_end:
            return True, f"set {target} to cancel at period end ({after})"
        return False, f"interrupted: {target} is not set to cancel"
    if sub.status == "canceled":
        return True, f"canceled {target} now (canceled; {after})"
    return False, f"interrupted before Stripe canceled {target}: it is {sub.status}"


#: The audit modes that end or restore a subscription (``ActionPlan.mode``).
_CANCEL_MODES = frozenset(
    {
        action_mode(ActionType.CANCEL_SUBSCRIPTION, at_period_end=False),
        action_mode(ActionType.CANCEL_SUBSCRIPTION, at_period_end=True),
    }
)
_UNCANCEL_MODE = action_mode(ActionType.REMOVE_SCHEDULED_CANCEL, at_period_end=False)


def canceled_by_billing_ops(session: Session, subscription_ids: Iterable[str]) -> frozenset[str]:
    """Which of these subscriptions billing-ops itself set to cancel (now or at period end):
    its latest cancel-or-restore action on each is a cancel that did not fail. ``pending``
    counts, because Stripe's webhook about the cancel can be processed before the call that
    caused it has been recorded as succeeded."""
    ids = sorted(set(subscription_ids))
    if not ids:
        return frozenset()
    rows = session.execute(
        select(ActionAuditRow.target, ActionAuditRow.action)
        .where(
            ActionAuditRow.target.in_(ids),
            ActionAuditRow.action.in_([*_CANCEL_MODES, _UNCANCEL_MODE]),
            ActionAuditRow.result != FAILED,
        )
        .order_by(ActionAuditRow.id)
    ).all()
    latest = {target: action for target, action in rows}
    return frozenset(t for t, action in latest.items() if t and action in _CANCEL_MODES)


def _case_of(refund: dict[str, Any]) -> str | None:
    """The case a refund was made for (its ``metadata.billing_ops_case``)."""
    metadata = refund.get("metadata") or {}
    return metadata.get("billing_ops_case") if isinstance(metadata, dict) else None


def _finish(
    engine: Engine, audit_id: int, result: str, request_id: str | None, detail: str
) -> None:
    with write_session(engine) as session:
        audit = session.get(ActionAuditRow, audit_id)
        if audit is not None:
            audit.result, audit.stripe_request_id, audit.detail = result, request_id, detail


def _one_line(error: BaseException) -> str:
    message = getattr(error, "user_message", None) or str(error) or type(error).__name__
    return " ".join(str(message).split())


def audit_of(session: Session, case_id: int) -> list[dict[str, Any]]:
    """The case's audit log, oldest first, as the case JSON shows it."""
    rows = session.scalars(
        select(ActionAuditRow).where(ActionAuditRow.case_id == case_id).order_by(ActionAuditRow.id)
    )
    return [
        {
            "at": iso(row.at),
            "actor": row.actor,
            "action": row.action,
            "target": row.target,
            "amount_minor": row.amount_minor,
            "currency": row.currency,
            "result": row.result,
            "stripe_request_id": row.stripe_request_id,
            "idempotency_key": row.idempotency_key,
            "detail": row.detail,
        }
        for row in rows
    ]


def action_taken_text(audit: list[dict[str, Any]]) -> str | None:
    """ACTION TAKEN of the handoff: every action that succeeded, who did it and when."""
    lines = [
        f"{entry['detail']} — by {entry['actor']} at {entry['at']}"
        + (f" (Stripe request {entry['stripe_request_id']})" if entry["stripe_request_id"] else "")
        for entry in audit
        if entry["result"] == SUCCEEDED
    ]
    return "\n".join(lines) or None
