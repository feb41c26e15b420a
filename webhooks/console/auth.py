"""Signing operators in and out of the console.

``worker.operators.authenticate`` is the one place that decides whether a token belongs to an
operator, for the API and the console alike; the session cookie then carries the operator's
name and a digest of the token (signed, HttpOnly) until sign-out, ``SESSION_LIFETIME_SECONDS``,
or the token stops standing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any

import structlog
from flask import Response, current_app, g, redirect, render_template, request, session, url_for

from webhooks.console.blueprint import bp
from webhooks.console.security import SESSION_LIFETIME_SECONDS
from worker import operators
from worker.operators import Operator

log = structlog.get_logger()


def authenticate(token: str) -> Operator | None:
    """The operator a token belongs to: the same ``worker.operators.authenticate`` the API
    asks (named operators' own tokens, or ``OPERATOR_TOKEN`` as ``admin``)."""
    settings = current_app.config["SETTINGS"]
    return operators.authenticate(current_app.config["ENGINE"], settings.operator_token, token)


def signed_in() -> Operator | None:
    """The operator of this request's session: signed in, not expired, and their token still
    standing (a removed operator or a changed ``OPERATOR_TOKEN`` ends the session)."""
    name = session.get("operator")
    since = session.get("signed_in_at")
    digest = session.get("token_digest")
    if not (isinstance(name, str) and isinstance(since, int) and isinstance(digest, str)):
        return None
    if not 0 <= time.time() - since <= SESSION_LIFETIME_SECONDS:
        return None
    if "console_operator" not in g:  # once per request: a page asks several times
        g.console_operator = operators.session_holder(
            current_app.config["ENGINE"],
            current_app.config["SETTINGS"].operator_token,
            name,
            digest,
        )
    operator: Operator | None = g.console_operator
    return operator


def operator_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Send a signed-out browser to the sign-in page, coming back here afterwards."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if signed_in() is None:
            target = url_for("console.signin", next=request.full_path.rstrip("?"))
            if request.headers.get("HX-Request"):  # an in-place refresh: reload the whole page
                return Response(status=204, headers={"HX-Redirect": target})
            return redirect(target)
        return view(*args, **kwargs)

    return guarded


def _local_path(target: str | None) -> str:
    """Only a path on this site, never ``//elsewhere`` or ``https://elsewhere``."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return url_for("console.queue")


@bp.route("/signin", methods=["GET", "POST"])
def signin() -> Any:
    next_path = _local_path(request.values.get("next"))
    error = None
    if request.method == "POST":
        token = request.form.get("token", "").strip()
        operator = authenticate(token)
        if operator is not None:
            session.clear()  # a fresh session (and CSRF token) for every sign-in
            session.permanent = True
            session["operator"] = operator.name
            session["signed_in_at"] = int(time.time())
            session["token_digest"] = operators.session_digest(token)
            log.info("console_signed_in", operator=operator.name)
            return redirect(next_path)
        log.info("console_sign_in_refused")
        error = "That token does not belong to an operator."
    configured = operators.any_configured(
        current_app.config["ENGINE"], current_app.config["SETTINGS"].operator_token
    )
    status = 401 if error else 200
    return render_template(
        "console/signin.html", error=error, next_path=next_path, configured=configured
    ), status


@bp.post("/signout")
def signout() -> Any:
    operator = signed_in()
    session.clear()
    if operator is not None:
        log.info("console_signed_out", operator=operator.name)
    return redirect(url_for("console.signin"))
