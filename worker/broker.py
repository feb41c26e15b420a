"""The Dramatiq broker on Redis, with timeouts that turn an outage into a fast error.

redis-py retries with backoff by default; at the webhook edge that would hold Stripe's request
for seconds. The edge's client fails within about a connect timeout so the view can answer 503
and Stripe retries later.
"""

from __future__ import annotations

from collections.abc import Sequence

import dramatiq
import redis
import structlog
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import AgeLimit, Callbacks, Pipelines, Retries, ShutdownNotifications
from redis.backoff import NoBackoff
from redis.retry import Retry

from worker.errors import RedisUnreachableError
from worker.urls import safe_url

#: Edge client: refuse fast when Redis is down (a 503 within ~100 ms).
EDGE_CONNECT_TIMEOUT_SECONDS = 0.1
EDGE_SOCKET_TIMEOUT_SECONDS = 0.5
#: Worker client: patient, it has nobody waiting on it.
WORKER_SOCKET_TIMEOUT_SECONDS = 10.0
#: A command checking at start-up that Redis is there.
STARTUP_PING_TIMEOUT_SECONDS = 3.0

#: A broker silent this long is dead, and Dramatiq's maintenance puts the messages it had taken
#: back on their queue. A live worker process heartbeats on every fetch, idle or busy: each of
#: its queues is polled at least every 2 s (Dramatiq's worker_timeout, with jitter), so 20 s is
#: many missed beats. A false alarm (a process frozen for 20 s) costs a redelivery, which the
#: store's unique event id makes a no-op. Dramatiq's default is 60 s.
HEARTBEAT_TIMEOUT_MS = 20_000
#: Out of a million Redis commands, how many also run that maintenance. Dramatiq's default
#: (1,000) left a dead worker's messages waiting minutes; workers run it on a fifth of their
#: commands, so it comes within seconds of the heartbeat timeout (a few cheap Redis reads while
#: no broker is dead). The edge keeps the default: its enqueue is the hot path.
WORKER_MAINTENANCE_CHANCE = 200_000
#: Together: a dead worker's messages are back on the queue well within 90 s (issue 9;
#: ``tests/worker/test_crash_recovery.py`` SIGKILLs a real worker mid-event).

EVENTS_QUEUE = "events"
NOTIFICATIONS_QUEUE = "notifications"
PROCESS_EVENT_ACTOR = "process_event"
PROCESS_EVENTS_ACTOR = "process_events"


def redis_client(url: str, *, edge: bool) -> redis.Redis:
    """A Redis client for the edge (fail fast, no retries) or for a worker."""
    if edge:
        return redis.Redis.from_url(
            url,
            socket_connect_timeout=EDGE_CONNECT_TIMEOUT_SECONDS,
            socket_timeout=EDGE_SOCKET_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
        )
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=WORKER_SOCKET_TIMEOUT_SECONDS,
        socket_timeout=WORKER_SOCKET_TIMEOUT_SECONDS,
        health_check_interval=30,
    )


def ping_redis(url: str, *, timeout: float = STARTUP_PING_TIMEOUT_SECONDS) -> None:
    """Raise ``RedisUnreachableError`` (one line: where and why) unless Redis answers PING."""
    client = redis.Redis.from_url(
        url, socket_connect_timeout=timeout, socket_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )
    try:
        client.ping()
    except redis.RedisError as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise RedisUnreachableError(f"Redis unreachable at {safe_url(url)} ({reason})") from None
    finally:
        client.close()


def build_broker(url: str, *, edge: bool, middleware: list | None = None) -> RedisBroker:
    """A RedisBroker on ``url``; the worker adds its own middleware on top of the defaults."""
    base = [AgeLimit(), ShutdownNotifications(), Callbacks(), Pipelines(), Retries()]
    broker = RedisBroker(
        client=redis_client(url, edge=edge),
        middleware=base,
        heartbeat_timeout=HEARTBEAT_TIMEOUT_MS,
        **({} if edge else {"maintenance_chance": WORKER_MAINTENANCE_CHANCE}),
    )
    for extra in middleware or []:
        broker.add_middleware(extra)
    return broker


def event_message(
    body: str, *, request_id: str | None = None, arrived_ms: int | None = None
) -> dramatiq.Message:
    """The ``process_event`` message of one raw, verified event JSON.

    The edge's request id rides along in the options (the one bound to this thread's log
    context when none is given), so the worker's log lines for this event carry the same
    ``request_id`` as the web's (``worker.middleware``); ``arrived_ms`` is when the edge
    accepted it (``worker.intake``), which the arrival → case lag is measured from.
    """
    request_id = request_id or structlog.contextvars.get_contextvars().get("request_id")
    options: dict[str, object] = {"request_id": request_id} if request_id else {}
    if arrived_ms is not None:
        options["arrived_ms"] = arrived_ms
    return dramatiq.Message(
        queue_name=EVENTS_QUEUE,
        actor_name=PROCESS_EVENT_ACTOR,
        args=(body,),
        kwargs={},
        options=options,
    )


def batch_message(entries: Sequence[tuple[str, int, str | None]]) -> dramatiq.Message:
    """The ``process_events`` message of a batch from the intake: (raw body, arrival time in
    Unix ms, request id) per event, in arrival order."""
    return dramatiq.Message(
        queue_name=EVENTS_QUEUE,
        actor_name=PROCESS_EVENTS_ACTOR,
        args=([list(entry) for entry in entries],),
        kwargs={},
        options={},
    )
