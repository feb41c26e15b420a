"""An action on a case, in two steps: the plan (a GET: what, to which ids, the money; nothing
changes), then the confirmed execution (a POST with its CSRF token). Both go through
``worker.action_requests``, the same way in as the API's."""

from __future__ import annotations

from typing import Any

import structlog
from flask import abort, current_app, flash, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict

from rules.actions import ActionRequest, ActionType
from rules.formatting import format_money
from webhooks.console.auth import operator_required, signed_in
from webhooks.console.blueprint import bp
from worker.action_requests import (
    ACTIONS,
    PlannedAction,
    carry_out,
    plan_request,
    with_default_channel,
)
from worker.actions import ActionFailedError, ContractConfirmationRequiredError
from worker.cases import get_case
from worker.errors import CaseNotFoundError
from worker.pipeline import utc_now

log = structlog.get_logger()

#: A refund amount in minor units: digits only, and fewer than a column could never hold.
MAX_AMOUNT_DIGITS = 15


def requested(values: MultiDict[str, str]) -> ActionRequest:
    """The action the form asks for; anything malformed is a 400 with the reason."""
    action = values.get("action", "")
    if action not in ACTIONS:
        abort(400, description=f"Choose one of: {', '.join(ACTIONS)}.")
    target = values.get("target", "").strip()[:255] or None
    raw = values.get("amount_minor", "").strip()
    if raw and not (raw.isdigit() and len(raw) <= MAX_AMOUNT_DIGITS):
        abort(400, description="A refund amount is a whole number of minor units (cents).")
    at_period_end = values.get("at_period_end") in ("1", "on", "yes")
    return with_default_channel(
        ActionRequest(ActionType(action), target, int(raw) if raw else None, at_period_end)
    )


def _plan_url(case_id: int, wanted: ActionRequest) -> str:
    """The plan page for the same request (never the CSRF token in a URL)."""
    return url_for(
        "console.plan_page",
        case_id=case_id,
        action=wanted.type.value,
        target=wanted.target or "",
        amount_minor="" if wanted.amount_minor is None else str(wanted.amount_minor),
        at_period_end="yes" if wanted.at_period_end else "",
    )


def _planned(case_id: int, wanted: ActionRequest) -> PlannedAction:
    try:
        return plan_request(
            current_app.config["ENGINE"], current_app.config["SETTINGS"], case_id, wanted, utc_now()
        )
    except CaseNotFoundError:
        abort(404, description=f"There is no case {case_id}.")


@bp.get("/cases/<int:case_id>/plan")
@operator_required
def plan_page(case_id: int) -> str:
    """What executing would do, with the confirm button: nothing is sent to Stripe here."""
    wanted = requested(request.args)
    planned = _planned(case_id, wanted)
    engine = current_app.config["ENGINE"]
    case = get_case(engine, case_id)
    plan = planned.plan
    return render_template(
        "console/plan.html",
        operator=signed_in(),
        case=case,
        wanted=wanted,
        planned=planned,
        money=format_money(plan.amount_minor, plan.currency)
        if plan is not None and plan.amount_minor is not None
        else None,
        livemode=case["livemode"],
    )


@bp.post("/cases/<int:case_id>/actions")
@operator_required
def take_action(case_id: int) -> Any:
    """Plan again (the state may have moved since the plan was shown), check it is the plan
    the operator confirmed, then execute it once under the operator's name."""
    operator = signed_in()
    assert operator is not None  # operator_required
    wanted = requested(request.form)
    back_to_case = redirect(url_for("console.case_detail", case_id=case_id))
    planned = _planned(case_id, wanted)
    if planned.already_done is not None:
        flash(f"Already done, nothing sent: {planned.already_done}", "ok")
        return back_to_case
    if planned.plan is None:
        flash(f"Refused: {planned.refusal}", "error")
        return back_to_case
    if planned.plan.summary != request.form.get("confirmed_plan"):
        flash("The plan changed since you saw it: check it again before confirming.", "error")
        return redirect(_plan_url(case_id, wanted))
    try:
        outcome = carry_out(
            current_app.config["ENGINE"],
            current_app.config["SETTINGS"],
            case_id,
            planned.plan,
            actor=operator.name,
            contract_confirmed=request.form.get("confirm_contract") == "yes",
            now=utc_now(),
        )
    except ContractConfirmationRequiredError as error:
        flash(str(error), "error")
        return redirect(_plan_url(case_id, wanted))
    except ActionFailedError as error:
        flash(str(error), "error")
        return back_to_case
    log.info(
        "console_action_taken", case_id=case_id, action=planned.plan.mode, operator=operator.name
    )
    flash(("Already done, nothing sent: " if outcome.repeated else "Done: ") + outcome.detail, "ok")
    return back_to_case
