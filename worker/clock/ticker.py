"""The clock's trigger, inside every worker process: no extra process to run or supervise.

Each worker process runs a daemon thread that offers a ``run_clock`` message once per
interval. A Redis ``SET key NX PX interval`` decides which process enqueues it for that
interval, so a fleet of workers enqueues one message per interval, not one per process; the
store lease (``worker.clock.lease``) then keeps runs from overlapping if one takes longer.
"""

from __future__ import annotations

import threading
from typing import Any
from uuid import uuid4

import dramatiq
import structlog

from worker.clock.queue import clock_message

log = structlog.get_logger()

#: The Redis key whose presence means "this interval's run has been enqueued".
TICK_KEY = "billing-ops:clock:tick"
#: How often each process checks whether the interval has passed, at most.
MAX_POLL_SECONDS = 5.0


class ClockTicker(dramatiq.Middleware):
    """Enqueue one ``run_clock`` per ``interval_seconds`` across all worker processes."""

    def __init__(self, *, interval_seconds: float) -> None:
        if interval_seconds <= 0:
            raise ValueError(f"interval_seconds must be positive, got {interval_seconds}")
        self.interval_seconds = interval_seconds
        self.poll_seconds = max(0.1, min(MAX_POLL_SECONDS, interval_seconds / 5))
        self._token = uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._loop, args=(broker,), name="billing-ops-clock", daemon=True
        )
        self._thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.poll_seconds + 1)

    def tick(self, broker: dramatiq.Broker) -> bool:
        """Enqueue a run if no process has for this interval; True when this one did."""
        client = getattr(broker, "client", None)
        if client is not None:
            interval_ms = int(self.interval_seconds * 1000)
            if not client.set(TICK_KEY, self._token, nx=True, px=interval_ms):
                return False
        broker.enqueue(clock_message())
        log.info("clock_run_enqueued", interval_seconds=self.interval_seconds)
        return True

    def _loop(self, broker: dramatiq.Broker) -> None:
        while not self._stop.is_set():
            try:
                self.tick(broker)
            except Exception as error:  # noqa: BLE001 - Redis down: try again next poll
                log.warning("clock_tick_failed", error=f"{type(error).__name__}: {error}")
            self._stop.wait(self.poll_seconds)
