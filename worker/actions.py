"""Operators' actions on a case: planned by ``rules.actions``, executed through Stripe once,
every step in the ``action_audit`` table.

Once means: the Stripe call carries an idempotency key derived from the case, the action and
its target (Stripe returns the first result for a repeated key, docs.stripe.com/api/
idempotent_requests), and an action already recorded as succeeded under that key is not sent
again at all (Stripe forgets keys after 24 hours; the audit does not). A ``pending`` row is
written before the call, so a crash between the call and its record leaves a trace, and the
retry reuses the key.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import stripe
import structlog
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from rules import BillingSnapshot, RulesConfig, build_snapshot
from rules.actions import ActionPlan, ActionRequest, ActionType, Refusal, plan_action
from rules.codec import finding_from_json
from rules.context import RuleContext
from rules.formatting import format_money
from worker.cases import RESOLVED, _case_row
from worker.errors import BillingOpsError
from worker.lookup import ID_PREFIXES
from worker.projection import find_person, load_snapshot
from worker.store.db import read_session, write_session
from worker.store.tables import ActionAuditRow, CaseEntryRow
from worker.stripe_api import fetched_records

log = structlog.get_logger()

PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"


class ActionFailedError(BillingOpsError):
    """Stripe refused or could not be reached: one line, the case unchanged."""


@dataclass(frozen=True)
class Outcome:
    """What executing did: ``repeated`` when the audit already had it done under this key."""

    plan: ActionPlan
    idempotency_key: str
    stripe_request_id: str | None
    detail: str
    repeated: bool


def idempotency_key(case_id: int, mode: str, target: str | None) -> str:
    """The same case, action and target always give the same key (and so one Stripe effect)."""
    return f"billing-ops-case-{case_id}-{mode}-{target or 'case'}"


def already_done(engine: Engine, case_id: int, request: ActionRequest) -> str | None:
    """What an action with this request's key did, when the audit has it succeeded: asked
    again, it is answered from the audit before any plan or Stripe call."""
    if request.target is None:
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
        person = find_person(session, [row.customer_id] if row.customer_id else [], [])
        objects = [(_object_type(s), s) for s in finding.subjects if _object_type(s)]
        snapshot = load_snapshot(session, person, objects)
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
    object_type = _object_type(target)
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
) -> Outcome:
    """Carry out ``plan`` once; raises ``ActionFailedError`` (audited, case unchanged)."""
    key = idempotency_key(case_id, plan.mode, plan.target)
    with write_session(engine, [key]) as session:
        _case_row(session, case_id)
        done = _succeeded(session, key)
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
    try:
        request_id, detail = _call_stripe(client, case_id, plan, key)
    except (stripe.StripeError, OSError) as error:
        line = _one_line(error)
        _finish(engine, audit_id, FAILED, getattr(error, "request_id", None), line)
        log.warning("case_action_failed", case_id=case_id, action=plan.mode, error=line)
        raise ActionFailedError(f"Stripe refused {plan.summary}: {line}") from None
    _finish(engine, audit_id, SUCCEEDED, request_id, detail)
    with write_session(engine) as session:
        row = _case_row(session, case_id)
        row.updated_at = now
        if plan.type is ActionType.NO_ACTION:
            row.status, row.resolved_at, row.status_by = RESOLVED, now, actor
            row.status_note = "resolved with no action"
        session.add(
            CaseEntryRow(case_id=case_id, at=now, actor=actor, action="action_taken", note=detail)
        )
    log.info("case_action_taken", case_id=case_id, action=plan.mode, request_id=request_id)
    return Outcome(plan, key, request_id, detail, repeated=False)


def _call_stripe(
    client: stripe.StripeClient | None, case_id: int, plan: ActionPlan, key: str
) -> tuple[str | None, str]:
    """The one Stripe call of a plan: (Stripe's request id, what it did, for the handoff)."""
    if plan.type is ActionType.NO_ACTION:
        return None, "resolved with no action in Stripe"
    if client is None:
        raise stripe.AuthenticationError("STRIPE_API_KEY is not set: nothing can be executed")
    options: Any = {"idempotency_key": key}
    target = plan.target or ""
    obj: Any
    if plan.type is ActionType.REFUND_CHARGE:
        params: Any = {
            "charge": target,
            "amount": plan.amount_minor,
            "metadata": {"billing_ops_case": str(case_id)},
        }
        obj = client.v1.refunds.create(params=params, options=options)
        done = f"refunded {format_money(plan.amount_minor, plan.currency)} of {target} ({obj.id})"
    elif plan.type is ActionType.PAY_INVOICE:
        obj = client.v1.invoices.pay(target, options=options)
        done = f"paid invoice {target} ({obj.status})"
    elif plan.type is ActionType.REMOVE_SCHEDULED_CANCEL:
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
        obj = client.v1.subscriptions.cancel(target, options=options)
        done = f"canceled {target} now ({obj.status})"
    response = getattr(obj, "last_response", None)
    return getattr(response, "request_id", None), done


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


def _object_type(object_id: str) -> str:
    return next((t for p, t in ID_PREFIXES.items() if object_id.startswith(p)), "")


def audit_of(session: Session, case_id: int) -> list[dict[str, Any]]:
    """The case's audit log, oldest first, as the case JSON shows it."""
    rows = session.scalars(
        select(ActionAuditRow).where(ActionAuditRow.case_id == case_id).order_by(ActionAuditRow.id)
    )
    return [
        {
            "at": row.at.isoformat(),
            "actor": row.actor,
            "action": row.action,
            "target": row.target,
            "amount_minor": row.amount_minor,
            "currency": row.currency,
            "result": row.result,
            "stripe_request_id": row.stripe_request_id,
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
