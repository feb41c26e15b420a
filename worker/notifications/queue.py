"""Putting outbox rows on the ``notifications`` queue, one small JSON message per row id.

Enqueueing happens after the pipeline's transaction committed; if Redis refuses, the rows
are still pending in the store and the maintenance sweep enqueues them later.
"""

from __future__ import annotations

from collections.abc import Iterable

import dramatiq
import structlog

from worker.broker import NOTIFICATIONS_QUEUE

log = structlog.get_logger()

DELIVER_NOTIFICATION_ACTOR = "deliver_notification"


def notification_message(outbox_id: int) -> dramatiq.Message:
    return dramatiq.Message(
        queue_name=NOTIFICATIONS_QUEUE,
        actor_name=DELIVER_NOTIFICATION_ACTOR,
        args=(outbox_id,),
        kwargs={},
        options={},
    )


def enqueue_notifications(
    broker: dramatiq.Broker, outbox_ids: Iterable[int], *, delay_ms: int | None = None
) -> int:
    """Enqueue one delivery per id; never raises (the sweep catches up); return the count."""
    count = 0
    for outbox_id in outbox_ids:
        try:
            broker.enqueue(notification_message(outbox_id), delay=delay_ms)
        except Exception as error:  # noqa: BLE001 - the row stays pending; the sweep retries
            log.warning(
                "notification_enqueue_failed",
                outbox_id=outbox_id,
                error=f"{type(error).__name__}: {error}",
            )
            continue
        count += 1
    return count
