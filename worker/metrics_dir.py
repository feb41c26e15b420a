"""The Prometheus multiprocess directory: shared by the live processes using it, wiped only
when none is left.

prometheus-client's multiprocess mode keeps each process's values in files under
``PROMETHEUS_MULTIPROC_DIR`` and asks for the directory to be wiped between runs, before
start-up (https://prometheus.github.io/client_python/multiprocess/). billing-ops starts
process trees on one directory at different times — ``serve``, or ``web`` and ``worker``
started apart, restarted apart — and two instances on one host may be given the same
directory, so a start must never delete files that a live process still writes.

Every process tree that writes there holds a shared ``flock`` on ``DIR/.billing-ops.lock``
for its whole life, inherited by the processes it starts (the kernel drops it when the last
holder dies, however it dies). A start that can take that lock exclusively knows that no
process uses the directory and wipes it; otherwise it joins, keeping everyone's files. Dead
processes are told to prometheus-client with ``mark_process_dead`` (gunicorn's
``child_exit``, the Dramatiq worker process's shutdown, the supervisor after a group ended).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger()

LOCK_FILE_NAME = ".billing-ops.lock"
#: The variable prometheus-client itself reads (at import) in every process.
ENV_VAR = "PROMETHEUS_MULTIPROC_DIR"


@dataclass(frozen=True)
class MetricsDir:
    """A claimed multiprocess directory; ``lock_fd`` stays open (and is passed on to the
    children) for as long as processes write there."""

    path: Path
    lock_fd: int
    wiped: bool

    def serve(self, host: str, port: int) -> None:
        """Serve the sum of this directory's files over HTTP (``/metrics``) from a daemon
        thread: ``billing-ops worker --metrics-port`` on a host that runs no web process."""
        from prometheus_client import CollectorRegistry, multiprocess, start_http_server

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(self.path))
        start_http_server(port, addr=host, registry=registry)
        log.info("worker_metrics_served", host=host, port=port)

    def mark_dead(self, pids: Iterable[int]) -> None:
        """prometheus-client's bookkeeping for processes that have ended."""
        from prometheus_client import multiprocess

        for pid in pids:
            multiprocess.mark_process_dead(pid, str(self.path))


def claim(path: Path) -> MetricsDir:
    """Join ``path`` as a user; wipe its metric files first when no live process uses it."""
    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path / LOCK_FILE_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    os.set_inheritable(fd, True)  # held by the children too (gunicorn after exec, Dramatiq)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fcntl.flock(fd, fcntl.LOCK_SH)  # live users: keep their files, share the directory
        log.info("metrics_dir_joined", path=str(path))
        return MetricsDir(path, fd, wiped=False)
    for stale in path.glob("*.db"):
        stale.unlink()
    fcntl.flock(fd, fcntl.LOCK_SH)  # nothing written yet, so a wipe by another start is harmless
    log.info("metrics_dir_wiped", path=str(path))
    return MetricsDir(path, fd, wiped=True)
