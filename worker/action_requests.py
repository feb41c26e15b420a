"""An operator's action request as the web console asks it: settled from the audit first
(``reconcile_pending``), answered from the audit when it was already done, else planned by
``rules.actions`` from the case and Stripe's current object, then executed once by
``worker.actions.execute``: the same functions, in the same order, as
``POST /api/cases/<id>/actions``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import stripe
from sqlalchemy import Engine

from rules.actions import ActionPlan, ActionRequest, ActionType, LinkChannel, Refusal
from worker.actions import (
    LinkDelivery,
    Outcome,
    already_done,
    execute,
    idempotency_key,
    plan_for_case,
    reconcile_pending,
)
from worker.notifications.recovery_emails import connect
from worker.settings import Settings
from worker.stripe_api import stripe_client

#: The actions an operator can ask for, by name.
ACTIONS = tuple(t.value for t in ActionType)


@dataclass(frozen=True, slots=True)
class PlannedAction:
    """What a request comes to before anything is executed: a plan, a refusal, or the
    audit's word that it was already done."""

    case_id: int
    plan: ActionPlan | None = None
    refusal: str | None = None
    already_done: str | None = None

    @property
    def idempotency_key(self) -> str | None:
        if self.plan is None:
            return None
        return idempotency_key(self.case_id, self.plan.mode, self.plan.target)


def client_for(settings: Settings) -> stripe.StripeClient | None:
    """The Stripe client actions use; None without ``STRIPE_API_KEY`` (only no_action runs)."""
    if not settings.stripe_api_key:
        return None
    return stripe_client(settings.stripe_api_key, settings.stripe_api_base)


def with_default_channel(request: ActionRequest) -> ActionRequest:
    """A payment link is emailed unless the request says otherwise (as the API does)."""
    if request.type is ActionType.SEND_PAYMENT_LINK and request.channel is None:
        return ActionRequest(
            request.type,
            request.target,
            request.amount_minor,
            request.at_period_end,
            LinkChannel.EMAIL,
        )
    return request


def plan_request(
    engine: Engine, settings: Settings, case_id: int, request: ActionRequest, now: datetime
) -> PlannedAction:
    """The plan for ``request``; raises ``CaseNotFoundError`` for an unknown case."""
    client = client_for(settings)
    reconcile_pending(engine, client, case_id, now)
    done = already_done(engine, case_id, request)
    if done is not None:
        return PlannedAction(case_id, already_done=done)
    plan = plan_for_case(engine, case_id, request, now, settings.rules, client)
    if isinstance(plan, Refusal):
        return PlannedAction(case_id, refusal=plan.reason)
    return PlannedAction(case_id, plan=plan)


def carry_out(
    engine: Engine,
    settings: Settings,
    case_id: int,
    plan: ActionPlan,
    *,
    actor: str,
    contract_confirmed: bool,
    now: datetime,
) -> Outcome:
    """Execute ``plan`` once under ``actor``. Raises ``ContractConfirmationRequiredError``
    (nothing done) and ``ActionFailedError`` (audited as failed, the case unchanged)."""
    return execute(
        engine,
        client_for(settings),
        case_id,
        plan,
        actor=actor,
        now=now,
        contract_confirmed=contract_confirmed,
        links=LinkDelivery(connect(settings), settings.portal_return_url),
    )
