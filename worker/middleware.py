"""Dramatiq middleware for cross-cutting concerns of the workers."""

from __future__ import annotations

import os
from typing import Any

import dramatiq
import structlog
from dramatiq.broker import MessageProxy


class LogContext(dramatiq.Middleware):
    """Bind the message id, the actor and the web request's id (when the edge sent one) to
    the log context for the life of one message: web and worker lines share ``request_id``."""

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            message_id=message.message_id, actor=message.actor_name
        )
        request_id = message.options.get("request_id")
        if isinstance(request_id, str):
            structlog.contextvars.bind_contextvars(request_id=request_id)

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        structlog.contextvars.clear_contextvars()

    after_skip_message = after_process_message


class MetricsBookkeeping(dramatiq.Middleware):
    """A Dramatiq worker process that shuts down tells prometheus-client's multiprocess mode
    it is gone (``mark_process_dead``), as gunicorn's ``child_exit`` does for web workers; a
    process killed outright is reported by the supervisor that sees its group end."""

    def __init__(self, multiprocess_dir: str | None) -> None:
        self.multiprocess_dir = multiprocess_dir

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if self.multiprocess_dir:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)
