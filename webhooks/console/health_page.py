"""Health (``/health``): the backlog, the event rate, and what failed, each with a retry.

Queue depth and the oldest message's age are read from Redis by ``worker.queue_depth`` (the
same reader as ``/metrics``). The store adds what a worker took but did not finish and the
notifications not yet sent. Retries use the same functions as ``billing-ops events retry``
and ``outbox retry``. The machines' probes stay where they were: ``/healthz`` and
``/readyz`` (JSON).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
import structlog
from flask import current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import Engine, func, select

from webhooks.console.auth import operator_required, signed_in
from webhooks.console.blueprint import bp
from worker.broker import EVENTS_QUEUE, NOTIFICATIONS_QUEUE
from worker.maintenance import requeue_events
from worker.notifications import outbox
from worker.notifications.queue import enqueue_notifications
from worker.pipeline import utc_now
from worker.queue_depth import QueueState, read_intake, read_queue
from worker.store.db import read_session
from worker.store.events import FAILED, RECEIVED, list_events, reset_for_retry
from worker.store.tables import EventRow, OutboxRow

log = structlog.get_logger()

#: Failed rows listed on the page (the CLI lists them all).
LISTED = 100


def queue_depths(now: float) -> list[QueueState] | None:
    """The intake, the events and the notifications queues (``worker.queue_depth``, the
    reader ``/metrics`` uses too), or None when Redis does not answer."""
    broker = current_app.config["BROKER"]
    try:
        return [read_intake(broker.client, now)] + [
            read_queue(broker.client, broker.namespace, q, now)
            for q in (EVENTS_QUEUE, NOTIFICATIONS_QUEUE)
        ]
    except redis.RedisError:
        return None


@dataclass(frozen=True, slots=True)
class Backlog:
    events_waiting: int
    oldest_waiting: datetime | None
    notifications_waiting: int
    events_last_5m: int
    events_last_hour: int

    @property
    def per_minute_5m(self) -> float:
        return self.events_last_5m / 5

    @property
    def per_minute_hour(self) -> float:
        return self.events_last_hour / 60


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def backlog(engine: Engine, now: datetime) -> Backlog:
    with read_session(engine) as session:
        waiting, oldest = session.execute(
            select(func.count(), func.min(EventRow.received_at)).where(EventRow.status == RECEIVED)
        ).one()
        notifications = session.scalar(
            select(func.count()).where(OutboxRow.status.in_(("pending", "sending")))
        )
        recent = session.execute(
            select(
                func.count().filter(EventRow.received_at >= now - timedelta(minutes=5)),
                func.count(),
            ).where(EventRow.received_at >= now - timedelta(hours=1))
        ).one()
    return Backlog(waiting, _aware(oldest), notifications or 0, recent[0], recent[1])


@bp.get("/health")
@operator_required
def health_page() -> str:
    engine = current_app.config["ENGINE"]
    now = utc_now()
    return render_template(
        "console/health.html",
        operator=signed_in(),
        now=now,
        backlog=backlog(engine, now),
        queues=queue_depths(now.timestamp()),
        failed_events=list_events(engine, FAILED, limit=LISTED),
        failed_notifications=outbox.list_rows(engine, status="failed", limit=LISTED),
    )


@bp.post("/health/events/retry")
@operator_required
def retry_event() -> Any:
    """Put one failed event back on the queue (``billing-ops events retry ID``)."""
    operator = signed_in()
    event_id = request.form.get("event_id", "")[:255]
    engine = current_app.config["ENGINE"]
    reset = reset_for_retry(engine, [event_id], utc_now())
    if not reset:
        flash(f"Event {event_id} is not failed (already retried?): left alone.", "error")
        return redirect(url_for("console.health_page"))
    try:
        requeue_events(engine, current_app.config["BROKER"], reset, utc_now())
    except redis.RedisError:
        flash(
            f"Event {event_id} is marked for retry but the queue did not answer; "
            "the supervisor's sweep will enqueue it.",
            "error",
        )
    else:
        flash(f"Event {event_id} is back on the queue.", "ok")
    log.info("console_event_retried", event_id=event_id, operator=operator and operator.name)
    return redirect(url_for("console.health_page"))


@bp.post("/health/notifications/retry")
@operator_required
def retry_notification() -> Any:
    """Send one failed notification again (``billing-ops outbox retry ID``)."""
    operator = signed_in()
    try:
        outbox_id = int(request.form.get("outbox_id", ""))
    except ValueError:
        outbox_id = 0
    engine = current_app.config["ENGINE"]
    reset = outbox.reset_failed(engine, [outbox_id], utc_now())
    if not reset:
        flash(f"Notification {outbox_id} is not failed: left alone.", "error")
    elif enqueue_notifications(current_app.config["BROKER"], reset):
        flash(f"Notification {outbox_id} is back on the queue.", "ok")
    else:
        flash(
            f"Notification {outbox_id} is pending again but the queue did not answer; "
            "the supervisor's sweep will send it.",
            "error",
        )
    log.info(
        "console_notification_retried", outbox_id=outbox_id, operator=operator and operator.name
    )
    return redirect(url_for("console.health_page"))
