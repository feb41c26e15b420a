"""Running billing-ops: ``serve`` (all in one), and the ``web`` / ``worker`` Procfile processes.

``serve`` checks what can fail before it starts anything (the data dir's instance lock, the
port, the Redis it was given), then supervises its children (``worker.supervisor``): a dead
one is restarted, a crash loop stops everything with one line, and a stop — Ctrl-C, SIGTERM,
or the SIGHUP of a closed terminal — ends every process group it started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
import structlog

from worker import metrics_dir
from worker.cli.app import cli_settings, main, open_engine, require_redis, safe_url, utc_now
from worker.errors import BillingOpsError, PortInUseError
from worker.metrics_dir import MetricsDir
from worker.settings import SECRET_FILE_NAME, Process, Settings
from worker.supervisor import Child, CrashLoop, Supervisor, child_pids

log = structlog.get_logger()

#: Signals that stop serve / worker: Ctrl-C, a service manager, a closed terminal or SSH session.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: gunicorn's own default listen backlog.
LISTEN_BACKLOG = 2048
SWEEP_INTERVAL_SECONDS = 60
_TICK_SECONDS = 0.2


class StopRequest:
    """Set by a stop signal; installed first thing, so a signal during start-up counts too."""

    def __init__(self) -> None:
        self.requested = False
        self.signal_name: str | None = None
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self.requested = True
        self.signal_name = signal.Signals(signum).name


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--web-workers", default=2, show_default=True, type=int)
@click.option("--processes", default=1, show_default=True, type=int, help="Worker processes.")
@click.option("--threads", default=4, show_default=True, type=int, help="Threads per worker.")
def serve(host: str, port: int, web_workers: int, processes: int, threads: int) -> None:
    """Web + workers in one process tree, with embedded Redis and SQLite unless configured.

    For one machine and for trying billing-ops out; the only process that generates a
    signing secret and runs its own Redis. Production runs the Procfile's ``web`` and
    ``worker`` instead.
    """
    from worker.embedded_redis import EmbeddedRedis
    from worker.instance_lock import acquire_instance_lock
    from worker.logs import configure_logging

    stop = StopRequest()
    settings = cli_settings(process=Process.ALL_IN_ONE)
    configure_logging(settings.log_format)
    try:
        lock = acquire_instance_lock(settings.data_dir)  # noqa: F841 - held while serve runs
        listener = _listen(host, port)
    except BillingOpsError as error:
        raise click.ClickException(str(error)) from None
    if not settings.embedded_redis:
        require_redis(settings)
    open_engine(settings)
    env = _child_env(settings, settings.effective_redis_url)
    metrics = _claim_metrics_dir(env)
    children: list[Child] = []
    if settings.embedded_redis:
        redis_server = EmbeddedRedis(
            data_dir=settings.data_dir, socket_path=settings.redis_socket_path
        )
        try:
            redis_server.start()
        except BillingOpsError as error:
            raise click.ClickException(str(error)) from None
        children.append(Child("redis", redis_server.spawn, process=redis_server.process))
    web = Child("web", lambda: _spawn_web(env, listener, web_workers, metrics.lock_fd))
    work = _worker_child(env, processes, threads, metrics.lock_fd)
    # Stopped in this order: web stops taking events, the workers drain, then Redis.
    supervisor = Supervisor([web, work, *children], on_gone=metrics.mark_dead)
    try:
        supervisor.start()
        click.echo(_banner(settings, f"http://{host}:{port}", embedded_redis=bool(children)))
        _supervise(settings, supervisor, stop)
    except CrashLoop as error:
        raise click.ClickException(f"billing-ops stopped: {error}") from None
    finally:
        supervisor.stop()
        listener.close()
        log.info("serve_stopped")


@main.command()
@click.option("--bind", default="0.0.0.0:8000", show_default=True)
@click.option("--workers", default=2, show_default=True, type=int)
def web(bind: str, workers: int) -> None:
    """The web process (gunicorn serving the app factory).

    Needs STRIPE_WEBHOOK_SECRET and REDIS_URL, set explicitly: it never generates a secret
    or runs a Redis of its own (only ``serve`` does).
    """
    from worker.logs import configure_logging

    settings = cli_settings(process=Process.WEB)
    configure_logging(settings.log_format)  # e.g. the metrics dir's line: JSON like the rest
    require_redis(settings)
    open_engine(settings)
    env = _child_env(settings, settings.effective_redis_url)
    _claim_metrics_dir(env)  # its lock is inheritable: gunicorn holds it after the exec
    os.execvpe(sys.executable, web_argv(bind, workers), env)


@main.command()
@click.option("--processes", default=2, show_default=True, type=int)
@click.option("--threads", default=4, show_default=True, type=int)
@click.option(
    "--metrics-port",
    type=int,
    help="Serve these worker processes' Prometheus metrics on this port (a host with no web).",
)
@click.option("--metrics-host", default="0.0.0.0", show_default=True)
def worker(processes: int, threads: int, metrics_port: int | None, metrics_host: str) -> None:
    """The worker process tree (Dramatiq), restarted when it dies, with the stale-event sweeper.

    Needs REDIS_URL, set explicitly: the Redis the web processes put events on.
    """
    from worker.logs import configure_logging

    stop = StopRequest()
    settings = cli_settings(process=Process.WORKER)
    configure_logging(settings.log_format)
    require_redis(settings)
    open_engine(settings)
    env = _child_env(settings, settings.effective_redis_url)
    metrics = _claim_metrics_dir(env)
    if metrics_port is not None:
        try:
            metrics.serve(metrics_host, metrics_port)
        except OSError as error:
            raise click.ClickException(
                f"cannot serve metrics on {metrics_host}:{metrics_port} "
                f"({error.strerror or error}): free the port or choose another --metrics-port"
            ) from None
    supervisor = Supervisor(
        [_worker_child(env, processes, threads, metrics.lock_fd)], on_gone=metrics.mark_dead
    )
    try:
        supervisor.start()
        _supervise(settings, supervisor, stop)
    except CrashLoop as error:
        raise click.ClickException(f"billing-ops worker stopped: {error}") from None
    finally:
        supervisor.stop()
        log.info("worker_stopped")


def _banner(settings: Settings, base_url: str, *, embedded_redis: bool) -> str:
    """What ``serve`` prints on stdout once everything runs (its logs go to stderr)."""
    return (
        "\nbilling-ops is running\n"
        f"  webhook URL     {base_url}/webhooks/stripe\n"
        f"  signing secret  {secret_line(settings)}\n"
        f"  redis           {'embedded, ' if embedded_redis else ''}"
        f"{safe_url(settings.effective_redis_url)}\n"
        f"  database        {safe_url(settings.database_url)}\n"
        f"  forward Stripe  stripe listen --forward-to {base_url}/webhooks/stripe\n"
        "Ctrl-C stops everything.\n"
    )


def secret_line(settings: Settings) -> str:
    """The secret itself only when billing-ops generated it (the operator must copy it into
    Stripe); one from the environment is the operator's own and is only said to be set."""
    if settings.secret_generated:
        path = settings.data_dir / SECRET_FILE_NAME
        return f"{settings.webhook_secrets[0]}  (generated, kept in {path})"
    count = len(settings.webhook_secrets)
    rotation = f", {count} secrets during a rotation" if count > 1 else ""
    return f"set (from STRIPE_WEBHOOK_SECRET{rotation})"


def _listen(host: str, port: int) -> socket.socket:
    """The web port, bound here and handed to gunicorn: a busy port fails before anything
    starts, and the port stays open while a dead gunicorn is replaced."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        listener = socket.socket(family, kind, proto)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(LISTEN_BACKLOG)
    except OSError as error:
        reason = error.strerror or str(error)
        raise PortInUseError(
            f"cannot listen on {host}:{port} ({reason}): free port {port} "
            "or choose another with --port"
        ) from None
    return listener


def _child_env(settings: Settings, redis_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        REDIS_URL=redis_url,
        DATABASE_URL=settings.database_url,
        BILLING_OPS_DATA_DIR=str(settings.data_dir),
    )
    if settings.webhook_secrets:  # a worker may have none: it verifies no signature
        env["STRIPE_WEBHOOK_SECRET"] = ",".join(settings.webhook_secrets)
    env.setdefault(metrics_dir.ENV_VAR, str(settings.data_dir / "metrics"))  # one per instance
    return env


def _claim_metrics_dir(env: dict[str, str]) -> MetricsDir:
    """Join the Prometheus multiprocess dir, wiping it only when no live process uses it
    (``worker.metrics_dir``): a ``web`` restarted beside a running ``worker``, or a second
    instance given the same dir, never deletes files still being written."""
    return metrics_dir.claim(Path(env[metrics_dir.ENV_VAR]))


#: The WSGI app the web process serves.
WEB_APP = "webhooks:create_app()"


def web_argv(bind: str, workers: int, app: str = WEB_APP) -> list[str]:
    """The gunicorn command line of ``web`` and ``serve`` (``bench/ingest.py`` runs it too);
    every other gunicorn setting lives in ``webhooks/gunicorn_config.py``."""
    return [
        sys.executable, "-m", "gunicorn",
        "-c", "python:webhooks.gunicorn_config",
        "--bind", bind,
        "--workers", str(workers),
        "--access-logfile", "-",
        "--no-control-socket",
        app,
    ]  # fmt: skip


def _spawn_web(
    env: dict[str, str], listener: socket.socket, workers: int, metrics_lock: int
) -> subprocess.Popen[bytes]:
    fd = listener.fileno()
    return subprocess.Popen(
        web_argv(f"fd://{fd}", workers),
        env=env,
        pass_fds=(fd, metrics_lock),
        start_new_session=True,
    )


def _worker_child(env: dict[str, str], processes: int, threads: int, metrics_lock: int) -> Child:
    """The Dramatiq tree; healthy while its main process has all its worker processes."""

    def healthy(pid: int) -> bool:
        children = child_pids(pid)
        return children is None or len(children) >= processes

    return Child(
        "worker", lambda: _spawn_worker(env, processes, threads, metrics_lock), healthy=healthy
    )


def _spawn_worker(
    env: dict[str, str], processes: int, threads: int, metrics_lock: int
) -> subprocess.Popen[bytes]:
    args = [
        sys.executable, "-m", "worker.dramatiq_cli", "worker.entrypoint",
        "--processes", str(processes), "--threads", str(threads),
    ]  # fmt: skip
    return subprocess.Popen(args, env=env, pass_fds=(metrics_lock,), start_new_session=True)


def _supervise(settings: Settings, supervisor: Supervisor, stop: StopRequest) -> None:
    """Until a stop signal: restart dead children, and sweep stale events every minute.

    A crash loop raises ``CrashLoop`` (its message says which child and how often).
    """
    from worker.broker import build_broker
    from worker.maintenance import requeue_stale_events

    engine = open_engine(settings, migrate=False)
    broker = build_broker(settings.effective_redis_url, edge=False)
    next_sweep = time.monotonic() + 5
    while not stop.requested:
        supervisor.check(time.monotonic())
        if time.monotonic() >= next_sweep:
            try:
                requeue_stale_events(
                    engine,
                    broker,
                    older_than=timedelta(seconds=settings.stale_event_seconds),
                    now=utc_now(),
                )
            except Exception as error:  # noqa: BLE001 - keep supervising; say what went wrong
                log.warning("stale_event_sweep_failed", error=f"{type(error).__name__}: {error}")
            next_sweep = time.monotonic() + SWEEP_INTERVAL_SECONDS
        time.sleep(_TICK_SECONDS)
    log.info("stop_requested", signal=stop.signal_name)
