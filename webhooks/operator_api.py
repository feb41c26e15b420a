"""The operator JSON API: cases and lookup, behind ``Authorization: Bearer $OPERATOR_TOKEN``.

With no token configured the API is closed (403), never open.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from worker.cases import STATUSES, get_case, list_cases
from worker.errors import CaseNotFoundError
from worker.lookup import LookupQueryError, lookup

bp = Blueprint("operator_api", __name__, url_prefix="/api")


def require_operator(view: Callable[..., Any]) -> Callable[..., Any]:
    """Refuse unless the bearer token matches ``OPERATOR_TOKEN`` (constant-time compare)."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        expected = current_app.config["SETTINGS"].operator_token
        if not expected:
            return jsonify(error="operator_api_disabled"), 403
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), expected.encode()
        ):
            return jsonify(error="unauthorized"), 401
        return view(*args, **kwargs)

    return guarded


@bp.get("/cases")
@require_operator
def cases_index() -> tuple[Response, int]:
    status = request.args.get("status")
    if status and status not in STATUSES:
        return jsonify(error="invalid_status", allowed=list(STATUSES)), 400
    docs = list_cases(current_app.config["ENGINE"], status=status, kind=request.args.get("kind"))
    return jsonify(cases=docs), 200


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
