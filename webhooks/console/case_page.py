"""One case (``/cases/<id>``): the handoff, the timeline, the billing state, ack and resolve."""

from __future__ import annotations

from typing import Any

import structlog
from flask import abort, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import Engine, select

from webhooks.console.auth import operator_required, signed_in
from webhooks.console.blueprint import bp
from worker.action_requests import ACTIONS
from worker.cases import ACKNOWLEDGED, RESOLVED, change_status, get_case
from worker.errors import CaseNotFoundError, CaseTransitionError
from worker.handoff import SECTIONS, TITLES
from worker.lookup import lookup
from worker.pipeline import utc_now
from worker.store.db import read_session
from worker.store.tables import OutboxRow

log = structlog.get_logger()

#: A note longer than this is cut: the timeline is for a sentence or two.
MAX_NOTE_LENGTH = 2000


def notifications_of(engine: Engine, case_id: int) -> list[dict[str, Any]]:
    """The case's outbox rows: what was (or will be) sent, and how it went. No addresses."""
    with read_session(engine) as session:
        rows = session.scalars(
            select(OutboxRow).where(OutboxRow.case_id == case_id).order_by(OutboxRow.id)
        )
        return [
            {
                "id": row.id,
                "channel": row.channel,
                "reason": row.reason,
                "status": row.status,
                "attempts": row.attempts,
                "last_error": row.last_error,
                "updated_at": row.updated_at,
            }
            for row in rows
        ]


@bp.get("/cases/<int:case_id>")
@operator_required
def case_detail(case_id: int) -> str:
    engine = current_app.config["ENGINE"]
    try:
        doc = get_case(engine, case_id)
    except CaseNotFoundError:
        abort(404, description=f"There is no case {case_id}.")
    customer_id = doc["customer"]["id"]
    billing = lookup(engine, customer_id) if customer_id.startswith("cus_") else None
    recommended = doc["recommended_action"]["type"]
    return render_template(
        "console/case.html",
        operator=signed_in(),
        case=doc,
        sections=[(key, TITLES[key], doc["handoff"].get(key) or "") for key in SECTIONS],
        billing=billing,
        notifications=notifications_of(engine, case_id),
        livemode=doc["livemode"],
        action_types=ACTIONS,
        default_action=recommended if recommended in ACTIONS else None,
        default_target=doc["recommended_action"]["target"] if recommended in ACTIONS else None,
    )


@bp.post("/cases/<int:case_id>/status")
@operator_required
def case_status(case_id: int) -> Any:
    """Acknowledge (note optional) or resolve (note required), recorded under the operator."""
    operator = signed_in()
    assert operator is not None  # operator_required
    status = request.form.get("status", "")
    note = " ".join(request.form.get("note", "").split())[:MAX_NOTE_LENGTH] or None
    if status not in (ACKNOWLEDGED, RESOLVED):
        abort(400, description="A case can be acknowledged or resolved.")
    if status == RESOLVED and not note:
        flash("Say what was done before resolving the case.", "error")
        return redirect(url_for("console.case_detail", case_id=case_id))
    try:
        change = change_status(
            current_app.config["ENGINE"],
            case_id,
            status,
            actor=operator.name,
            note=note,
            now=utc_now(),
        )
    except CaseNotFoundError:
        abort(404, description=f"There is no case {case_id}.")
    except CaseTransitionError as error:  # an ack of a resolved case: it is not reopened
        flash(f"{str(error)[:1].upper()}{str(error)[1:]}.", "error")
        return redirect(url_for("console.case_detail", case_id=case_id))
    if change.changed:
        log.info("console_case_status", case_id=case_id, status=status, operator=operator.name)
        flash(f"Case {case_id} is {status}.", "ok")
    else:
        flash(f"Case {case_id} is already {status}; nothing changed.", "ok")
    return redirect(url_for("console.case_detail", case_id=case_id))
