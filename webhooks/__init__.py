"""The HTTP edge of billing-ops: verify, reject, enqueue, ack — and the operator API."""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from worker.broker import build_broker
from worker.logs import configure_logging
from worker.settings import Settings, load_settings
from worker.store.db import make_engine


def create_app(settings: Settings | None = None, *, broker: Any = None) -> Flask:
    """App factory: settings from the environment unless given; no connection is opened here."""
    settings = settings or load_settings()
    configure_logging(settings.log_format)
    app = Flask(__name__)
    app.config["SETTINGS"] = settings
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["BROKER"] = broker or build_broker(settings.effective_redis_url, edge=True)
    app.config["ENGINE"] = make_engine(settings.database_url)

    from webhooks import health, operator_api, stripe_endpoint

    app.register_blueprint(stripe_endpoint.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(operator_api.bp)

    @app.before_request
    def bind_request_context() -> None:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            request_id=request.headers.get("X-Request-Id") or uuid.uuid4().hex
        )

    @app.teardown_request
    def clear_request_context(_error: BaseException | None) -> None:
        structlog.contextvars.clear_contextvars()

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[Response, int]:
        code = "payload_too_large" if error.code == 413 else (error.name or "error").lower()
        if error.code == 413:
            from webhooks.metrics import WEBHOOKS_REJECTED

            WEBHOOKS_REJECTED.labels(reason="payload_too_large").inc()
        return jsonify(error=code.replace(" ", "_")), error.code or 500

    return app
