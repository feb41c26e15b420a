"""How full the queues are, read from Redis when ``/metrics`` is scraped.

A gauge written by some process would go stale the moment that process stops; the queue's
own state in Redis is always current, so a Prometheus collector reads it at scrape time. The
Redis layout is Dramatiq's Redis broker's (``dramatiq/brokers/redis/dispatch.lua``): per
queue, a list ``NS:QUEUE`` of message ids waiting to be taken (pushed at the tail, taken from
the head), a hash ``NS:QUEUE.msgs`` of every message not yet acknowledged (waiting or taken
by a worker), and the same pair for ``QUEUE.DQ``, the messages delayed to a later time
(retries after a backoff). This module is the one place that knows that layout for metrics.

Before Dramatiq, an accepted webhook waits on the intake list (``worker.intake``) until a
worker's pump moves it; that list is reported as the queue ``intake``: its entries are
waiting, and the oldest one's age is from its arrival at the edge.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import redis
import structlog
from dramatiq.common import dq_name
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from worker.broker import EVENTS_QUEUE, NOTIFICATIONS_QUEUE
from worker.clock.queue import CLOCK_QUEUE
from worker.intake import INTAKE_KEY, oldest_arrival_ms

log = structlog.get_logger()

#: The queues billing-ops' workers consume.
QUEUES = (EVENTS_QUEUE, NOTIFICATIONS_QUEUE, CLOCK_QUEUE)
#: The name the intake list goes by among the queues.
INTAKE_QUEUE = "intake"


@dataclass(frozen=True)
class QueueState:
    """One queue at one instant."""

    queue: str
    waiting: int  # on the queue, not taken by any worker yet
    in_progress: int  # taken by a worker (running or prefetched), not acknowledged yet
    delayed: int  # put off to a later time (a retry's backoff)
    oldest_age_seconds: float  # of the message at the head of the queue; 0 when empty


def read_queue(client: redis.Redis, namespace: str, queue: str, now: float) -> QueueState:
    """The state of ``queue`` from Redis; ``now`` is Unix seconds."""
    key = f"{namespace}:{queue}"
    delayed_key = f"{namespace}:{dq_name(queue)}"
    pipe = client.pipeline(transaction=True)  # one consistent instant: MULTI/EXEC
    pipe.llen(key)
    pipe.hlen(f"{key}.msgs")
    pipe.hlen(f"{delayed_key}.msgs")
    pipe.lindex(key, 0)
    waiting, unacknowledged, delayed, head = pipe.execute()
    return QueueState(
        queue=queue,
        waiting=waiting,
        in_progress=max(unacknowledged - waiting, 0),
        delayed=delayed,
        oldest_age_seconds=_age(client, f"{key}.msgs", head, now),
    )


def read_intake(client: redis.Redis, now: float) -> QueueState:
    """The intake list: webhooks accepted by the edge that no pump has moved to Dramatiq yet."""
    waiting = client.llen(INTAKE_KEY)
    arrived_ms = oldest_arrival_ms(client) if waiting else None
    age = 0.0 if arrived_ms is None else max(now - arrived_ms / 1000, 0.0)
    return QueueState(
        INTAKE_QUEUE, waiting=waiting, in_progress=0, delayed=0, oldest_age_seconds=age
    )


def _age(client: redis.Redis, messages_key: str, head: bytes | None, now: float) -> float:
    """Seconds since the head message was built (Dramatiq's ``message_timestamp``, in ms)."""
    if head is None:
        return 0.0
    encoded = client.hget(messages_key, head)
    if encoded is None:  # taken between the two reads: the next one is younger still
        return 0.0
    try:
        timestamp_ms = json.loads(encoded)["message_timestamp"]
    except (ValueError, KeyError, TypeError):
        return 0.0
    return max(now - timestamp_ms / 1000, 0.0)


class QueueCollector(Collector):
    """Prometheus collector: waiting / in-progress / delayed messages and the oldest waiting
    message's age per queue (the intake included), plus whether Redis answered (a scrape
    never fails on Redis)."""

    def __init__(self, client: redis.Redis, namespace: str, queues: Sequence[str] = QUEUES):
        self._client = client
        self._namespace = namespace
        self._queues = tuple(queues)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        reachable = GaugeMetricFamily(
            "billing_ops_queue_reachable", "1 when Redis answered this scrape's queue reads."
        )
        try:
            now = time.time()
            states = [read_intake(self._client, now)]
            states += [read_queue(self._client, self._namespace, q, now) for q in self._queues]
        except redis.RedisError as error:
            log.warning("queue_metrics_unavailable", error=type(error).__name__)
            reachable.add_metric([], 0)
            yield reachable
            return
        reachable.add_metric([], 1)
        yield reachable
        messages = GaugeMetricFamily(
            "billing_ops_queue_messages",
            "Messages on a queue: waiting for a worker, in progress (taken, not acknowledged), "
            "or delayed (a retry waiting for its backoff).",
            labels=["queue", "state"],
        )
        oldest = GaugeMetricFamily(
            "billing_ops_queue_oldest_message_age_seconds",
            "Age of the message at the head of the queue (the next to be taken); 0 when empty.",
            labels=["queue"],
        )
        for state in states:
            messages.add_metric([state.queue, "waiting"], state.waiting)
            messages.add_metric([state.queue, "in_progress"], state.in_progress)
            messages.add_metric([state.queue, "delayed"], state.delayed)
            oldest.add_metric([state.queue], state.oldest_age_seconds)
        yield messages
        yield oldest
