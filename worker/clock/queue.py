"""The clock's queue and message: one small ``run_clock`` message, no arguments."""

from __future__ import annotations

import dramatiq

CLOCK_QUEUE = "clock"
RUN_CLOCK_ACTOR = "run_clock"


def clock_message() -> dramatiq.Message:
    """The message that asks a worker for one clock run."""
    return dramatiq.Message(
        queue_name=CLOCK_QUEUE, actor_name=RUN_CLOCK_ACTOR, args=(), kwargs={}, options={}
    )
