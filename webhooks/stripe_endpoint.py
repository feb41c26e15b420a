"""``POST /webhooks/stripe``: size cap, verify, parse once, enqueue, then answer.

The view never touches the database and never runs a rule; it answers 2xx only after the
broker has accepted the message. Dedupe is the store's job (unique event id); the
``duplicate`` flag in the answer is a hint from a short-lived Redis marker, set in the same
pipelined round trip as the enqueue and only kept when the enqueue succeeded.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis
import structlog
from flask import Blueprint, Response, current_app, jsonify, request

from webhooks.metrics import (
    ENQUEUE_SECONDS,
    WEBHOOKS_ACCEPTED,
    WEBHOOKS_RECEIVED,
    WEBHOOKS_REJECTED,
)
from webhooks.signature import WebhookRejected, verify_signature
from worker.broker import enqueue_marked, event_message

log = structlog.get_logger()
bp = Blueprint("stripe_webhooks", __name__)

#: How long the "seen" hint lives: Stripe retries a delivery for up to 3 days.
SEEN_MARKER_TTL_SECONDS = 3 * 24 * 3600
SEEN_MARKER_PREFIX = "billing-ops:seen:"
#: The two 200 answers, serialised once (this view answers thousands of times a second).
ACCEPTED = b'{"received":true,"duplicate":false}\n'
ACCEPTED_DUPLICATE = b'{"received":true,"duplicate":true}\n'


def _reject(code: str, status: int = 400) -> tuple[Response, int]:
    WEBHOOKS_REJECTED.labels(reason=code).inc()
    log.warning("webhook_rejected", reason=code, status=status)
    return jsonify(error=code), status


def _parse_event(body: str) -> dict[str, Any]:
    try:
        event = json.loads(body)
    except ValueError:
        raise WebhookRejected("malformed_payload", "body is not JSON") from None
    if not (
        isinstance(event, dict)
        and event.get("object") == "event"
        and isinstance(event.get("id"), str)
        and isinstance(event.get("type"), str)
        and isinstance(event.get("data"), dict)
        and isinstance(event["data"].get("object"), dict)
    ):
        raise WebhookRejected("malformed_payload", "JSON is not a Stripe event object")
    return event


@bp.post("/webhooks/stripe")
def receive_stripe_event() -> Response | tuple[Response, int]:
    WEBHOOKS_RECEIVED.inc()
    settings = current_app.config["SETTINGS"]
    raw = request.get_data(cache=False)  # MAX_CONTENT_LENGTH refuses an oversize body first
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _reject("malformed_payload")
    try:
        verify_signature(
            body,
            request.headers.get("Stripe-Signature"),
            settings.webhook_secrets,
            now=time.time(),
            tolerance=settings.signature_tolerance_seconds,
        )
        event = _parse_event(body)
    except WebhookRejected as rejected:
        return _reject(rejected.code)

    structlog.contextvars.bind_contextvars(event_id=event["id"], event_type=event["type"])
    started = time.perf_counter()
    try:
        first = enqueue_marked(
            current_app.config["BROKER"],
            event_message(body),
            SEEN_MARKER_PREFIX + event["id"],
            SEEN_MARKER_TTL_SECONDS,
        )
    except redis.RedisError as error:
        log.error("webhook_enqueue_failed", error=type(error).__name__)
        return _reject("queue_unavailable", 503)
    ENQUEUE_SECONDS.observe(time.perf_counter() - started)
    WEBHOOKS_ACCEPTED.inc()
    log.info("webhook_accepted", duplicate=not first)
    return Response(ACCEPTED if first else ACCEPTED_DUPLICATE, mimetype="application/json")
