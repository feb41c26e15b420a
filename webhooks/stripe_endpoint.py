"""``POST /webhooks/stripe``: size cap, verify, validate, enqueue, then answer.

Validation is the worker's own (``worker.event_validation``): what is answered 200 can be
stored and processed; anything else is ``400 malformed_payload`` with a ``detail``.

The view never touches the database and never runs a rule; it answers 2xx only after Redis
has taken the event onto the intake (``worker.intake``: one MULTI/EXEC round trip; the
workers move it onto Dramatiq). Dedupe is the store's job (unique event id); the
``duplicate`` flag in the answer is a hint from a short-lived Redis marker, set in the same
transaction as the push, so it never exists without the event on the intake.
"""

from __future__ import annotations

import time

import redis
import structlog
from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from rules.errors import MalformedEventError
from rules.events import BillingEvent
from webhooks.metrics import (
    ENQUEUE_SECONDS,
    WEBHOOKS_ACCEPTED,
    WEBHOOKS_RECEIVED,
    WEBHOOKS_REJECTED,
)
from webhooks.signature import WebhookRejected, verify_signature
from worker import intake
from worker.event_validation import short_detail, validate_event

log = structlog.get_logger()
bp = Blueprint("stripe_webhooks", __name__)

#: How long the "seen" hint lives: Stripe retries a delivery for up to 3 days.
SEEN_MARKER_TTL_SECONDS = 3 * 24 * 3600
SEEN_MARKER_PREFIX = "billing-ops:seen:"
#: The two 200 answers, serialised once (this view answers thousands of times a second).
ACCEPTED = b'{"received":true,"duplicate":false}\n'
ACCEPTED_DUPLICATE = b'{"received":true,"duplicate":true}\n'


def _reject(code: str, status: int = 400, detail: str | None = None) -> tuple[Response, int]:
    WEBHOOKS_REJECTED.labels(reason=code).inc()
    log.warning("webhook_rejected", reason=code, status=status)
    if code == "malformed_payload" and detail:
        return jsonify(error=code, detail=detail), status
    return jsonify(error=code), status


def _read_body(limit: int) -> bytes:
    """The raw body; 413 past ``limit``.

    With a Content-Length, ``MAX_CONTENT_LENGTH`` refuses an oversize body before reading it.
    A chunked body has none: werkzeug would cut it at the limit without a word (and the cut
    body then fails its signature, a misleading 400), so it is read here from the server's
    terminated stream (gunicorn sets ``wsgi.input_terminated``), one byte past the limit."""
    if request.content_length is not None or not request.environ.get("wsgi.input_terminated"):
        return request.get_data(cache=False)
    stream = request.environ["wsgi.input"]
    data = bytearray()
    while len(data) <= limit:
        chunk = stream.read(limit + 1 - len(data))
        if not chunk:
            break
        data += chunk
    if len(data) > limit:
        raise RequestEntityTooLarge()
    return bytes(data)


def _validated(body: str) -> BillingEvent:
    """The event as a worker will parse it, or ``malformed_payload`` with the reason."""
    try:
        return validate_event(body)
    except MalformedEventError as error:
        raise WebhookRejected("malformed_payload", short_detail(error)) from None


@bp.post("/webhooks/stripe")
def receive_stripe_event() -> Response | tuple[Response, int]:
    WEBHOOKS_RECEIVED.inc()
    settings = current_app.config["SETTINGS"]
    raw = _read_body(settings.max_body_bytes)
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _reject("malformed_payload", detail="body is not UTF-8")
    try:
        verify_signature(
            body,
            request.headers.get("Stripe-Signature"),
            settings.webhook_secrets,
            now=time.time(),
            tolerance=settings.signature_tolerance_seconds,
        )
        event = _validated(body)
    except WebhookRejected as rejected:
        return _reject(rejected.code, detail=rejected.detail)

    structlog.contextvars.bind_contextvars(event_id=event.id, event_type=event.type)
    started = time.perf_counter()
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    entry = intake.encode_envelope(raw, int(time.time() * 1000), request_id)
    try:
        first = intake.push(
            current_app.config["BROKER"].client,
            entry,
            SEEN_MARKER_PREFIX + event.id,
            SEEN_MARKER_TTL_SECONDS,
        )
    except redis.RedisError as error:
        log.error("webhook_enqueue_failed", error=type(error).__name__)
        return _reject("queue_unavailable", 503)
    ENQUEUE_SECONDS.observe(time.perf_counter() - started)
    WEBHOOKS_ACCEPTED.inc()
    log.info("webhook_accepted", duplicate=not first)
    return Response(ACCEPTED if first else ACCEPTED_DUPLICATE, mimetype="application/json")
