"""The app factory of the HTTP edge: settings, broker, engine, blueprints, JSON errors."""

from __future__ import annotations

import re
import uuid
from typing import Any

import structlog
from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from webhooks.metrics import WEBHOOKS_REJECTED
from worker.broker import build_broker
from worker.logs import configure_logging
from worker.settings import Settings, load_settings
from worker.store.db import make_engine

#: A caller's X-Request-Id is kept only if it looks like an id (never free text in our logs).
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")


def create_app(settings: Settings | None = None, *, broker: Any = None) -> Flask:
    """App factory: settings from the environment unless given; no connection is opened here."""
    settings = settings or load_settings()
    configure_logging(settings.log_format)
    app = Flask(__name__)
    app.config["SETTINGS"] = settings
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["BROKER"] = broker or build_broker(settings.effective_redis_url, edge=True)
    app.config["ENGINE"] = make_engine(settings.database_url)

    from webhooks import health, openapi, operator_api, stripe_endpoint
    from webhooks.console import register_console

    app.register_blueprint(stripe_endpoint.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(operator_api.bp)
    app.register_blueprint(openapi.bp)
    register_console(app, settings)

    @app.before_request
    def bind_request_context() -> None:
        structlog.contextvars.clear_contextvars()
        given = request.headers.get("X-Request-Id", "")
        structlog.contextvars.bind_contextvars(
            request_id=given if REQUEST_ID_RE.fullmatch(given) else uuid.uuid4().hex
        )

    @app.after_request
    def tell_request_id(response: Response) -> Response:
        """The id in the answer: the caller, gunicorn's access line and the worker share it."""
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        if request_id:
            response.headers["X-Request-Id"] = request_id
        return response

    @app.teardown_request
    def clear_request_context(_error: BaseException | None) -> None:
        structlog.contextvars.clear_contextvars()

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[Response, int]:
        """Every HTTP error as JSON ``{"error": code}``, like the contract's own errors."""
        if error.code == 413:
            WEBHOOKS_REJECTED.labels(reason="payload_too_large").inc()
            return jsonify(error="payload_too_large"), 413
        return jsonify(error=(error.name or "error").lower().replace(" ", "_")), error.code or 500

    return app
