"""Liveness, readiness and metrics."""

from __future__ import annotations

import redis
from flask import Blueprint, Response, current_app, jsonify

from webhooks.metrics import render_metrics
from worker.queue_depth import QueueCollector
from worker.store.db import ping_database

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process answers: nothing more is checked."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready when both Redis (the queue) and the database answer."""
    checks: dict[str, str] = {}
    try:
        current_app.config["BROKER"].client.ping()
        checks["redis"] = "ok"
    except redis.RedisError as error:
        checks["redis"] = type(error).__name__
    try:
        ping_database(current_app.config["ENGINE"])
        checks["database"] = "ok"
    except Exception as error:  # noqa: BLE001 - any failure means "not ready"
        checks["database"] = type(error).__name__
    ready = all(value == "ok" for value in checks.values())
    return jsonify(status="ready" if ready else "unavailable", checks=checks), (
        200 if ready else 503
    )


@bp.get("/metrics")
def metrics() -> Response:
    broker = current_app.config["BROKER"]
    payload, content_type = render_metrics(
        current_app.config["SETTINGS"].metrics_multiprocess_dir,
        QueueCollector(broker.client, broker.namespace),
    )
    return Response(payload, content_type=content_type)
