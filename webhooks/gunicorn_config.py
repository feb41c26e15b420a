"""gunicorn settings of the web process, in one place.

Loaded by ``billing-ops web`` and ``serve`` (``-c python:webhooks.gunicorn_config``, see
``worker.cli.processes.web_argv``) and by ``bench/ingest.py`` through that same argv.

* An evented worker (gevent, wrapped by ``webhooks.gunicorn_worker``): a connection that
  trickles its request in costs a greenlet, not a worker, so slow clients cannot starve the
  webhook (gunicorn docs, "Choosing a Worker Type": sync workers assume fast clients behind a
  buffering proxy; async workers suit clients that hold connections open).
* ``keepalive`` is also the deadline for reading a request head: gunicorn's async workers read
  each head under ``gevent.Timeout(keepalive)`` and drop a client that has not finished by then.
* ``child_exit`` tells prometheus-client's multiprocess mode that a web worker is gone.
* Errors gunicorn answers itself (a request line over ``limit_request_line`` → 414, too many or
  too large header fields → 431, a malformed request → 400) are JSON, like the app's own.

This module is imported by gunicorn's master before any worker is forked: import nothing heavy.
"""

from __future__ import annotations

import os
from typing import Any

#: ``webhooks.gunicorn_worker.JsonGeventWorker``: gunicorn's gevent worker with JSON errors.
worker_class = "webhooks.gunicorn_worker.JsonGeventWorker"
#: Concurrent connections per worker process (slow or idle ones included).
worker_connections = 1000
#: Seconds to read a request head (and to keep an idle connection open between requests).
keepalive = 5
#: Seconds a worker may stay silent (one request hogging it) before the master replaces it.
timeout = 30
#: gunicorn's own limits, stated here so the 414 / 431 answers above are deliberate.
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190


def child_exit(server: Any, worker: Any) -> None:
    """A web worker is gone: drop its live-gauge files, as prometheus-client's multiprocess
    mode asks (``PROMETHEUS_MULTIPROC_DIR`` is the variable prometheus-client itself reads)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


#: gunicorn's own lines (its error log, and one ``http_request`` line per request: method,
#: path without the query string, status, bytes, milliseconds, request id) through the same
#: handler as every billing-ops log line: one JSON format, the redaction processor, the line
#: cap (``worker.logs.stdlib_handler``, imported when gunicorn applies this configuration).
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "WARNING", "handlers": ["billing_ops"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
        "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": True},
    },
    "handlers": {"billing_ops": {"()": "worker.logs.stdlib_handler"}},
    "formatters": {},
}
