"""The console's browser security: the session cookie, CSRF tokens and response headers.

The machine endpoints (Stripe's webhook, the bearer-token API, health probes, metrics) get no
session at all: a cookie there would be a second way in, and opening one costs the webhook's
hot path a signature check per request.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask, Request, Response, request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFProtect

from worker.settings import Settings

#: Paths served to machines, never to a browser session.
MACHINE_PREFIXES = ("/webhooks/", "/api/", "/healthz", "/readyz", "/metrics")
#: The file in the data dir that keeps a generated session key across restarts.
SESSION_SECRET_FILE = "session_secret"
#: A sign-in lasts this long, then the operator signs in again (checked server-side too).
SESSION_LIFETIME_SECONDS = 12 * 3600

#: No inline script or style, no framing, forms post only here, nothing loaded from elsewhere.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    # Pages show customers' billing: never kept in a shared cache or the back-forward cache.
    "Cache-Control": "no-store",
}

csrf = CSRFProtect()


class ConsoleSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, opened only for the console's own paths; the cookie is
    ``Secure`` whenever the request came over HTTPS (directly, or through a proxy gunicorn
    trusts via ``forwarded_allow_ips``) or ``PUBLIC_BASE_URL`` is https."""

    def open_session(self, app: Flask, request: Request) -> Any:
        if request.path.startswith(MACHINE_PREFIXES):
            return self.make_null_session(app)
        return super().open_session(app, request)

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def session_secret(settings: Settings) -> str:
    """``BILLING_OPS_SESSION_SECRET``, else a key generated once and kept in the data dir
    (every web process of one install agrees on it; several machines must set the variable)."""
    if settings.session_secret:
        return settings.session_secret
    path = Path(settings.data_dir) / SESSION_SECRET_FILE
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another web worker won the race
        return path.read_text().strip()
    key = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key


def configure(app: Flask, settings: Settings) -> None:
    """Session key and cookie flags, CSRF protection on every console form."""
    app.config.update(
        SECRET_KEY=session_secret(settings),
        SESSION_COOKIE_NAME="billing_ops_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=(settings.public_base_url or "").startswith("https://"),
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME_SECONDS,
        # The token is bound to the session, which expires itself; a page left open for an
        # hour must still be able to post.
        WTF_CSRF_TIME_LIMIT=None,
    )
    app.session_interface = ConsoleSessionInterface()
    csrf.init_app(app)


def add_security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def exempt_machine_blueprints(app: Flask, *names: str) -> None:
    """Bearer-token and signed-webhook endpoints carry no cookie, so no CSRF token either."""
    for name in names:
        csrf.exempt(app.blueprints[name])
