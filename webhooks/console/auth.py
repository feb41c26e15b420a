"""Signing operators in and out of the console.

``authenticate`` is the one place that decides whether a token belongs to an operator; the
session cookie then carries the operator's name (signed, HttpOnly) until sign-out or
``SESSION_LIFETIME_SECONDS``.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

import structlog
from flask import Response, current_app, redirect, render_template, request, session, url_for

from webhooks.console.blueprint import bp
from webhooks.console.security import SESSION_LIFETIME_SECONDS
from worker.settings import Settings

log = structlog.get_logger()

#: The name the audit records for the single ``OPERATOR_TOKEN``.
ADMIN_OPERATOR = "admin"
#: A token longer than this is no token of ours (and never compared).
MAX_TOKEN_LENGTH = 512


@dataclass(frozen=True, slots=True)
class Operator:
    """Who is signed in: the name every action and status change is recorded under."""

    name: str


def authenticate(settings: Settings, token: str) -> Operator | None:
    """The operator a token belongs to, or None (constant-time compare)."""
    expected = settings.operator_token
    given = token.strip()
    if not expected or not given or len(given) > MAX_TOKEN_LENGTH:
        return None
    if hmac.compare_digest(given.encode(), expected.encode()):
        return Operator(name=ADMIN_OPERATOR)
    return None


def signed_in() -> Operator | None:
    """The operator of this request's session, if it is signed in and not expired."""
    name = session.get("operator")
    since = session.get("signed_in_at")
    if not isinstance(name, str) or not isinstance(since, int | float):
        return None
    if time.time() - since > SESSION_LIFETIME_SECONDS:
        return None
    return Operator(name=name)


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
        operator = authenticate(current_app.config["SETTINGS"], request.form.get("token", ""))
        if operator is not None:
            session.clear()  # a fresh session (and CSRF token) for every sign-in
            session.permanent = True
            session["operator"] = operator.name
            session["signed_in_at"] = int(time.time())
            log.info("console_signed_in", operator=operator.name)
            return redirect(next_path)
        log.info("console_sign_in_refused")
        error = "That token does not belong to an operator."
    configured = bool(current_app.config["SETTINGS"].operator_token)
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
