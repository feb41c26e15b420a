"""Dramatiq actors: thin verbs that decode a message and call one service function.

Actors are declared on a broker at start-up (``setup``), never at import time, so the web
process and the tests can import this package without a Redis connection.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import dramatiq
import structlog
from dramatiq.middleware import CurrentMessage
from sqlalchemy import Engine

from worker import metrics, pipeline
from worker.broker import (
    EVENTS_QUEUE,
    NOTIFICATIONS_QUEUE,
    PROCESS_EVENT_ACTOR,
    PROCESS_EVENTS_ACTOR,
    build_broker,
)
from worker.clock import run as clock_run
from worker.clock.queue import CLOCK_QUEUE, RUN_CLOCK_ACTOR
from worker.clock.ticker import ClockTicker
from worker.intake import Envelope
from worker.intake_pump import IntakePump, enqueue_each
from worker.logs import configure_logging
from worker.middleware import LogContext, MetricsBookkeeping
from worker.notifications import delivery
from worker.notifications.planning import NotifyPolicy
from worker.notifications.queue import DELIVER_NOTIFICATION_ACTOR, enqueue_notifications
from worker.settings import Settings, load_settings
from worker.store import events as event_log
from worker.store.db import make_engine, upgrade_database
from worker.stripe_api import ProductNames, SubscriptionRefresher

log = structlog.get_logger()

#: Attempts of one event before it is marked failed for an operator (``events retry``).
MAX_EVENT_RETRIES = 5
#: First retry after 1 s, doubling up to 5 minutes.
MIN_BACKOFF_MS = 1_000
MAX_BACKOFF_MS = 300_000
#: Unexpected errors while delivering (the store down); transient channel errors are
#: retried by the outbox's own backoff instead, and a lapsed claim by the maintenance sweep.
MAX_NOTIFICATION_RETRIES = 3
#: A failed clock run is not retried: the next interval's run picks up the same people.
MAX_CLOCK_RETRIES = 0


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    engine: Engine
    broker: dramatiq.Broker
    #: The time the actors act at: the wall clock, or a clock a test steps (a settle window
    #: passed without waiting for it).
    clock: pipeline.Clock = pipeline.utc_now


_runtime: Runtime | None = None


def runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("worker.actors.setup() has not been called in this process")
    return _runtime


def _pipeline_options(rt: Runtime) -> dict[str, Any]:
    """What both event actors hand the pipeline: rules, channels, clock and the Stripe API."""
    api = (rt.settings.stripe_api_key, rt.settings.stripe_api_base)
    return {
        "config": rt.settings.rules,
        "notify": NotifyPolicy.from_settings(rt.settings),
        "clock": rt.clock,
        "refresher": SubscriptionRefresher.from_settings(*api),
        "products": ProductNames.from_settings(*api),
    }


def process_event(body: str) -> None:
    """Record, project and evaluate one Stripe event; failures are counted in the store."""
    rt = runtime()
    try:
        outcome = pipeline.process_event(rt.engine, body, **_pipeline_options(rt))
    except Exception as error:
        message = CurrentMessage.get_current_message()
        retries = message.options.get("retries", 0) if message else MAX_EVENT_RETRIES
        final = retries >= MAX_EVENT_RETRIES
        now = rt.clock()
        alerts = event_log.record_failure(
            rt.engine,
            pipeline.event_id_of(body),
            f"{type(error).__name__}: {error}",
            final=final,
            now=now,
            payload=body,  # no row yet (the first insert failed): keep one, not a dead letter
            on_failed=pipeline.alert_on_failure(NotifyPolicy.from_settings(rt.settings), now),
        )
        metrics.event_attempt_failed(pipeline.event_type_of(body), final=final)
        log.exception("event_failed", retries=retries)
        enqueue_notifications(rt.broker, alerts)
        raise
    if outcome.cases_opened or outcome.cases_updated:
        _observe_arrival_to_case()
    enqueue_notifications(rt.broker, outcome.outbox_ids)


def process_events(entries: list[list[Any]]) -> None:
    """A batch from the intake, in arrival order, in one locked transaction
    (``pipeline.process_batch``). If it fails, each of its events goes back on the queue as a
    ``process_event`` message of its own, so retries, failure accounting and operator alerts
    are exactly the single path's (what the batch committed before failing comes back as a
    duplicate, a no-op)."""
    rt = runtime()
    envelopes = [Envelope(body, arrived_ms, request_id) for body, arrived_ms, request_id in entries]
    outcomes: list[pipeline.Outcome] = []
    try:
        for outcome in pipeline.process_batch(rt.engine, envelopes, **_pipeline_options(rt)):
            outcomes.append(outcome)
    except Exception as error:  # noqa: BLE001 - every event is retried on its own
        structlog.contextvars.unbind_contextvars("event_id", "event_type", "request_id")
        log.warning(
            "event_batch_failed", events=len(envelopes), error=f"{type(error).__name__}: {error}"
        )
        enqueue_notifications(rt.broker, [i for o in outcomes for i in o.outbox_ids])
        enqueue_each(rt.broker, envelopes)
        return
    now = time.time()
    for envelope, outcome in zip(envelopes, outcomes, strict=True):
        if outcome.cases_opened or outcome.cases_updated:
            metrics.case_reached(now - envelope.arrived_ms / 1000)
    enqueue_notifications(rt.broker, [i for o in outcomes for i in o.outbox_ids])


def _observe_arrival_to_case() -> None:
    """Arrival → case lag: from the moment the edge accepted the event (``arrived_ms``, set
    by the pump from the intake envelope; Dramatiq's ``message_timestamp`` for a message
    enqueued directly, e.g. a retry) to now, just after the case change committed."""
    message = CurrentMessage.get_current_message()
    if message is not None:
        arrived_ms = message.options.get("arrived_ms", message.message_timestamp)
        metrics.case_reached(time.time() - arrived_ms / 1000)


def deliver_notification(outbox_id: int) -> None:
    """Deliver one outbox row; a transient failure, or a row not due yet (a new case settling),
    comes back on the queue at its time."""
    rt = runtime()
    result = delivery.deliver(
        rt.engine, outbox_id, channels=delivery.Channels.from_settings(rt.settings), now=rt.clock()
    )
    if result.retry_at is not None:
        delay = max(0, int((result.retry_at - rt.clock()).total_seconds() * 1000))
        enqueue_notifications(rt.broker, [outbox_id], delay_ms=delay)
    enqueue_notifications(rt.broker, result.alerts)


def run_clock() -> None:
    """Evaluate the people whose time-driven conditions fell due, at wall-clock time."""
    rt = runtime()
    result = clock_run.run_clock(
        rt.engine,
        rt.clock(),
        config=rt.settings.rules,
        notify=NotifyPolicy.from_settings(rt.settings),
    )
    enqueue_notifications(rt.broker, result.outbox_ids)


def setup(
    settings: Settings | None = None,
    *,
    migrate: bool = True,
    clock: pipeline.Clock = pipeline.utc_now,
) -> Runtime:
    """Build the broker and engine for this process and declare the actors on it (``clock``:
    the wall clock, unless a test steps its own)."""
    global _runtime
    settings = settings or load_settings()
    configure_logging(settings.log_format)
    ticker = ClockTicker(interval_seconds=settings.clock_interval_seconds)
    broker = build_broker(
        settings.effective_redis_url,
        edge=False,
        middleware=[CurrentMessage(), LogContext(), ticker, IntakePump()],
    )
    dramatiq.set_broker(broker)
    broker.add_middleware(MetricsBookkeeping(settings.metrics_multiprocess_dir))
    engine = make_engine(settings.database_url)
    if migrate:
        upgrade_database(engine, settings.data_dir)
    actors = (
        (process_event, PROCESS_EVENT_ACTOR, EVENTS_QUEUE, MAX_EVENT_RETRIES),
        (process_events, PROCESS_EVENTS_ACTOR, EVENTS_QUEUE, MAX_EVENT_RETRIES),
        (deliver_notification, DELIVER_NOTIFICATION_ACTOR, NOTIFICATIONS_QUEUE,
         MAX_NOTIFICATION_RETRIES),
        (run_clock, RUN_CLOCK_ACTOR, CLOCK_QUEUE, MAX_CLOCK_RETRIES),
    )  # fmt: skip
    for fn, name, queue, retries in actors:
        dramatiq.actor(
            broker=broker,
            actor_name=name,
            queue_name=queue,
            max_retries=retries,
            min_backoff=MIN_BACKOFF_MS,
            max_backoff=MAX_BACKOFF_MS,
        )(fn)
    _runtime = Runtime(settings=settings, engine=engine, broker=broker, clock=clock)
    return _runtime
