"""The operator JSON API: cases, lookup and actions, behind ``Authorization: Bearer TOKEN``.

TOKEN is an operator's own (``billing-ops operators add``) or ``OPERATOR_TOKEN`` (the admin);
``worker.operators.authenticate`` decides, and the operator it names is the one every action,
acknowledgement and resolution is recorded under (never a name the request body declares).
With no token configured and no operator added the API is closed (403), never open.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request

from worker.case_queries import CaseQueryError, find_cases, parse_case_query
from worker.cases import ACKNOWLEDGED, MAX_CASE_ID, RESOLVED, get_case, set_status
from worker.errors import BillingOpsError, CaseNotFoundError
from worker.lookup import LookupQueryError, lookup
from worker.operators import Operator, any_configured, authenticate

bp = Blueprint("operator_api", __name__, url_prefix="/api")


def require_operator(view: Callable[..., Any]) -> Callable[..., Any]:
    """Refuse unless the bearer token authenticates an operator (``g.operator`` then names
    them): 401 for a missing or wrong token, 403 when nobody could ever sign in."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        admin_token = current_app.config["SETTINGS"].operator_token
        engine = current_app.config["ENGINE"]
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        bearer = given.strip() if scheme.lower() == "bearer" else None
        operator = authenticate(engine, admin_token, bearer)
        if operator is None:
            if not any_configured(engine, admin_token):
                return jsonify(error="operator_api_disabled"), 403
            return jsonify(error="unauthorized"), 401
        g.operator = operator
        return view(*args, **kwargs)

    return guarded


def current_operator() -> Operator:
    """The operator ``require_operator`` authenticated for this request."""
    operator: Operator = g.operator
    return operator


@bp.get("/cases")
@require_operator
def cases_index() -> tuple[Response, int]:
    """A page of cases: filters, sort, ``limit`` and ``cursor`` (``worker/case_queries.py``)."""
    try:
        query = parse_case_query(request.args.to_dict(flat=False))
    except CaseQueryError as error:
        return query_error(error), 400
    page = find_cases(current_app.config["ENGINE"], query)
    return jsonify(
        cases=[case.as_json() for case in page.cases], next=page.next_cursor, total=page.total
    ), 200


def query_error(error: CaseQueryError) -> Response:
    """The 400 body of a bad case-list parameter: its code, its name, why, what is allowed."""
    body: dict[str, Any] = {
        "error": error.code,
        "parameter": error.parameter,
        "detail": error.message,
    }
    if error.allowed:
        body["allowed"] = list(error.allowed)
    return jsonify(body)


@bp.get("/cases/<int:case_id>")
@require_operator
def case_detail(case_id: int) -> tuple[Response, int]:
    try:
        return jsonify(get_case(current_app.config["ENGINE"], case_id)), 200
    except CaseNotFoundError:
        return jsonify(error="case_not_found"), 404


@bp.get("/lookup")
@require_operator
def lookup_customer() -> tuple[Response, int]:
    query = request.args.get("q", "").strip()
    if not query:
        return jsonify(error="missing_query"), 400
    try:
        return jsonify(lookup(current_app.config["ENGINE"], query)), 200
    except LookupQueryError as error:
        return jsonify(error="invalid_query", detail=str(error)), 400


@bp.post("/cases/<int:case_id>/actions")
@require_operator
def case_action(case_id: int) -> tuple[Response, int]:
    """Plan an action on a case; with ``"confirm": true``, execute it once (``billing-ops act``)."""
    from rules.actions import ActionRequest, ActionType, LinkChannel, Refusal
    from worker.actions import (
        ActionFailedError,
        ContractConfirmationRequiredError,
        LinkDelivery,
        already_done,
        execute,
        idempotency_key,
        plan_for_case,
        reconcile_pending,
    )
    from worker.notifications.recovery_emails import connect
    from worker.pipeline import utc_now
    from worker.stripe_api import stripe_client

    if not 0 < case_id <= MAX_CASE_ID:  # no column holds it: asking the store would fail
        return jsonify(error="case_not_found"), 404
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or body.get("action") not in {t.value for t in ActionType}:
        return jsonify(error="invalid_action", allowed=[t.value for t in ActionType]), 400
    amount = body.get("amount_minor")
    target = body.get("target")
    channel = body.get("channel")
    if (
        (amount is not None and type(amount) is not int)
        or (target is not None and not isinstance(target, str))
        or (channel is not None and channel not in {c.value for c in LinkChannel})
    ):
        return jsonify(error="invalid_action_parameters"), 400
    if channel is None and body["action"] == ActionType.SEND_PAYMENT_LINK:
        channel = LinkChannel.EMAIL
    settings = current_app.config["SETTINGS"]
    engine = current_app.config["ENGINE"]
    wanted = ActionRequest(
        ActionType(body["action"]),
        target,
        amount,
        body.get("at_period_end") is True,
        LinkChannel(channel) if channel else None,
    )
    client = (
        stripe_client(settings.stripe_api_key, settings.stripe_api_base)
        if settings.stripe_api_key
        else None
    )
    try:
        reconcile_pending(engine, client, case_id, utc_now())
        done = already_done(engine, case_id, wanted)
        if done is not None:
            return jsonify(executed=False, already_done=done), 200
        plan = plan_for_case(engine, case_id, wanted, utc_now(), settings.rules, client)
        if isinstance(plan, Refusal):
            return jsonify(error="refused", reason=plan.reason), 409
        doc = dataclasses.asdict(plan) | {
            "mode": plan.mode,
            "needs_contract_confirmation": plan.needs_contract_confirmation,
            "idempotency_key": idempotency_key(case_id, plan.mode, plan.target),
        }
        if body.get("confirm") is not True:
            return jsonify(executed=False, plan=doc), 200
        outcome = execute(
            engine,
            client,
            case_id,
            plan,
            actor=current_operator().name,
            now=utc_now(),
            contract_confirmed=body.get("confirm_contract") is True,
            links=LinkDelivery(connect(settings), settings.portal_return_url),
        )
    except ContractConfirmationRequiredError:
        return jsonify(error="contract_confirmation_required", plan=doc), 409
    except CaseNotFoundError:
        return jsonify(error="case_not_found"), 404
    except ActionFailedError as error:
        return jsonify(error="stripe_error", detail=str(error)), 502
    return jsonify(
        executed=not outcome.repeated,
        plan=doc,
        detail=outcome.detail,
        stripe_request_id=outcome.stripe_request_id,
        link=outcome.link_url if plan.channel is LinkChannel.PRINT else None,
    ), 200


@bp.post("/cases/<int:case_id>/ack")
@require_operator
def case_ack(case_id: int) -> tuple[Response, int]:
    """Acknowledge a case (someone is on it), with an optional note, as the operator."""
    return _transition(case_id, ACKNOWLEDGED, note_required=False)


@bp.post("/cases/<int:case_id>/resolve")
@require_operator
def case_resolve(case_id: int) -> tuple[Response, int]:
    """Resolve a case with a note of what was done, as the operator."""
    return _transition(case_id, RESOLVED, note_required=True)


#: Notes land in the timeline and the handoff view; longer ones are a mistake, not a note.
MAX_NOTE_CHARS = 2000


def _transition(case_id: int, status: str, *, note_required: bool) -> tuple[Response, int]:
    body = request.get_json(silent=True)
    body = body if isinstance(body, dict) else {}
    note = body.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE_CHARS):
        return jsonify(error="invalid_note", detail=f"a string of at most {MAX_NOTE_CHARS}"), 400
    note = (note or "").strip() or None
    if note_required and note is None:
        return jsonify(error="note_required"), 400
    try:
        doc = set_status(
            current_app.config["ENGINE"],
            case_id,
            status,
            actor=current_operator().name,
            note=note,
            now=_now(),
        )
    except CaseNotFoundError:
        return jsonify(error="case_not_found"), 404
    except BillingOpsError as error:
        return jsonify(error="invalid_transition", detail=str(error)), 409
    return jsonify(doc), 200


def _now() -> datetime:
    from worker.pipeline import utc_now  # the edge loads the pipeline only when acting

    return utc_now()
