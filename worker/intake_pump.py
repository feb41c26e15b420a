"""The pump: moves intake entries onto Dramatiq's events queue, inside every worker process,
as ``process_events`` messages of up to ``BATCH`` events each.

One pump at a time across all processes and hosts holds a lease (``SET lease token NX PX``,
renewed on every step). A step peeks the oldest entries (``LRANGE`` from the tail), enqueues
them with Dramatiq's public ``broker.enqueue``, then trims exactly those from the list, in a
script that first checks the lease is still this pump's. A pump killed between the enqueue
and the trim leaves its entries on the intake; the next lease holder enqueues them again,
and the store's unique event id makes the second delivery a no-op. Nothing is removed from
the intake before Dramatiq holds it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from typing import Any
from uuid import uuid4

import dramatiq
import redis
import structlog

from worker.broker import batch_message, event_message
from worker.intake import INTAKE_KEY, Envelope

log = structlog.get_logger()

LEASE_KEY = "billing-ops:intake:lease"
#: A pump silent this long has lost its lease and another process takes over. A process
#: that dies holding it delays the intake by at most this much.
LEASE_MS = 5_000
#: Entries moved per step.
CHUNK = 200
#: Events per ``process_events`` message: one transaction each in a worker (a chunk of 200
#: spreads over two worker threads, and a quiet intake still goes out at once, smaller).
BATCH = 100
#: And at most this many bytes of bodies per message (one event alone may exceed it): a
#: Stripe event is a few KB, but the edge accepts bodies up to 1 MiB, and a hundred of those
#: in one message would be a 100 MB Redis value decoded whole by one worker.
BATCH_BYTES = 1_048_576
#: Waits between steps: the intake empty, and a process that does not hold the lease.
IDLE_SECONDS = 0.02
STANDBY_SECONDS = 1.0

#: Take (or keep) the lease, then peek up to ARGV[3] entries from the tail; nil if another
#: pump holds the lease.
_PEEK = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('pexpire', KEYS[1], ARGV[2])
elseif not redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return false
end
return redis.call('lrange', KEYS[2], -tonumber(ARGV[3]), -1)
"""
#: Remove the ARGV[2] oldest entries, only while the lease is still ARGV[1]'s: -1 otherwise.
_TRIM = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then
  return -1
end
redis.call('pexpire', KEYS[1], ARGV[3])
redis.call('ltrim', KEYS[2], 0, -1 - tonumber(ARGV[2]))
return redis.call('llen', KEYS[2])
"""
#: Give the lease up (a clean shutdown), only if it is still ARGV[1]'s.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""

#: What the pump does with the envelopes of one step, oldest first.
Enqueue = Callable[[dramatiq.Broker, Sequence[Envelope]], None]


def enqueue_batches(broker: dramatiq.Broker, envelopes: Sequence[Envelope]) -> None:
    """One ``process_events`` message per batch (``batches``), in arrival order."""
    for batch in batches(envelopes):
        broker.enqueue(batch_message([(e.body, e.arrived_ms, e.request_id) for e in batch]))


def batches(envelopes: Sequence[Envelope]) -> list[list[Envelope]]:
    """Consecutive runs of at most ``BATCH`` envelopes and ``BATCH_BYTES`` of bodies each."""
    runs: list[list[Envelope]] = []
    size = 0
    for envelope in envelopes:
        length = len(envelope.body)
        if not runs or len(runs[-1]) >= BATCH or (runs[-1] and size + length > BATCH_BYTES):
            runs.append([])
            size = 0
        runs[-1].append(envelope)
        size += length
    return runs


def enqueue_each(broker: dramatiq.Broker, envelopes: Sequence[Envelope]) -> None:
    """One ``process_event`` message per envelope, in arrival order (a failed batch's
    fallback, ``worker.actors.process_events``)."""
    for envelope in envelopes:
        broker.enqueue(
            event_message(
                envelope.body, request_id=envelope.request_id, arrived_ms=envelope.arrived_ms
            )
        )


class IntakePump(dramatiq.Middleware):
    """Drain the intake onto Dramatiq from a daemon thread of each worker process."""

    def __init__(
        self,
        *,
        chunk: int = CHUNK,
        lease_ms: int = LEASE_MS,
        enqueue: Enqueue = enqueue_batches,
    ) -> None:
        self.chunk = chunk
        self.lease_ms = lease_ms
        self.enqueue = enqueue
        self._token = uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._scripts: dict[str, Any] = {}

    def _script(self, broker: dramatiq.Broker, source: str) -> Any:
        """``source`` registered on the broker's client once (redis-py reloads it if Redis
        lost its script cache)."""
        if source not in self._scripts:
            self._scripts[source] = _client(broker).register_script(source)
        return self._scripts[source]

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._loop, args=(broker,), name="billing-ops-intake", daemon=True
        )
        self._thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=STANDBY_SECONDS + 1)
        with contextlib.suppress(redis.RedisError):  # else the lease lapses on its own
            self._script(broker, _RELEASE)(keys=[LEASE_KEY], args=[self._token])

    def step(self, broker: dramatiq.Broker) -> int | None:
        """Move up to ``chunk`` entries; how many, or None when another pump holds the lease."""
        raw = self._script(broker, _PEEK)(
            keys=[LEASE_KEY, INTAKE_KEY], args=[self._token, self.lease_ms, self.chunk]
        )
        if raw is None:
            return None
        if not raw:
            return 0
        self.enqueue(broker, [Envelope.decode(entry) for entry in reversed(raw)])
        left = self._script(broker, _TRIM)(
            keys=[LEASE_KEY, INTAKE_KEY], args=[self._token, len(raw), self.lease_ms]
        )
        if left == -1:  # paused past the lease: the holder now enqueues these again
            log.warning("intake_lease_lost", entries=len(raw))
            return None
        log.debug("intake_pumped", entries=len(raw), left=left)
        return len(raw)

    def _loop(self, broker: dramatiq.Broker) -> None:
        while not self._stop.is_set():
            try:
                moved = self.step(broker)
            except Exception as error:  # noqa: BLE001 - Redis down: try again shortly
                log.warning("intake_pump_failed", error=f"{type(error).__name__}: {error}")
                moved = None
            if moved is None:
                self._stop.wait(STANDBY_SECONDS)
            elif moved == 0:
                self._stop.wait(IDLE_SECONDS)


def _client(broker: dramatiq.Broker) -> redis.Redis:
    client = getattr(broker, "client", None)
    if client is None:
        raise TypeError("the intake pump needs a Redis broker")
    return client
