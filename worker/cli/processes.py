"""Running billing-ops: ``serve`` (all in one), and the ``web`` / ``worker`` Procfile processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from typing import Any

import click

from worker.cli.app import cli_settings, main, open_engine, utc_now
from worker.errors import BillingOpsError
from worker.settings import Settings


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--web-workers", default=2, show_default=True, type=int)
@click.option("--processes", default=1, show_default=True, type=int, help="Worker processes.")
@click.option("--threads", default=4, show_default=True, type=int, help="Threads per worker.")
def serve(host: str, port: int, web_workers: int, processes: int, threads: int) -> None:
    """Web + workers in one process tree, with embedded Redis and SQLite unless configured."""
    from worker.embedded_redis import EmbeddedRedis
    from worker.logs import configure_logging

    settings = cli_settings()
    configure_logging(settings.log_format)
    open_engine(settings)
    redis_server = None
    redis_url = settings.redis_url
    if settings.embedded_redis:
        redis_server = EmbeddedRedis(
            data_dir=settings.data_dir, socket_path=settings.redis_socket_path
        )
        try:
            redis_url = redis_server.start()
        except BillingOpsError as error:
            raise click.ClickException(str(error)) from None
    env = _child_env(settings, redis_url or settings.effective_redis_url)
    children = [
        _spawn_web(env, host, port, web_workers),
        _spawn_worker(env, processes, threads),
    ]
    click.echo(
        "\nbilling-ops is running\n"
        f"  webhook URL     http://{host}:{port}/webhooks/stripe\n"
        f"  signing secret  {settings.webhook_secrets[0]}"
        f"{_secret_origin(settings)}\n"
        f"  redis           {'embedded, ' if redis_server else ''}{redis_url}\n"
        f"  database        {_safe_url(settings.database_url)}\n"
        f"  forward Stripe  stripe listen --forward-to http://{host}:{port}/webhooks/stripe\n"
        "Ctrl-C stops everything.\n",
        err=True,
    )
    code = _supervise(settings, children, redis_url or settings.effective_redis_url)
    for child in children:  # web first: stop taking events, then drain the workers
        _stop(child)
    if redis_server:
        redis_server.stop()
    sys.exit(code)


@main.command()
@click.option("--bind", default="0.0.0.0:8000", show_default=True)
@click.option("--workers", default=2, show_default=True, type=int)
def web(bind: str, workers: int) -> None:
    """The web process (gunicorn serving the app factory)."""
    host, _, port = bind.rpartition(":")
    settings = cli_settings()
    open_engine(settings)
    env = _child_env(settings, settings.effective_redis_url)
    os.execvpe(sys.executable, web_argv(host, int(port), workers), env)


@main.command()
@click.option("--processes", default=2, show_default=True, type=int)
@click.option("--threads", default=4, show_default=True, type=int)
def worker(processes: int, threads: int) -> None:
    """The worker process tree (Dramatiq), with the stale-event sweeper."""
    settings = cli_settings()
    open_engine(settings)
    env = _child_env(settings, settings.effective_redis_url)
    child = _spawn_worker(env, processes, threads)
    code = _supervise(settings, [child], settings.effective_redis_url)
    _stop(child)
    sys.exit(code)


def _secret_origin(settings: Settings) -> str:
    return f"  (generated, kept in {settings.data_dir})" if settings.secret_generated else ""


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _child_env(settings: Settings, redis_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        REDIS_URL=redis_url,
        DATABASE_URL=settings.database_url,
        STRIPE_WEBHOOK_SECRET=",".join(settings.webhook_secrets),
        BILLING_OPS_DATA_DIR=str(settings.data_dir),
    )
    metrics_dir = settings.data_dir / "metrics"
    metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in metrics_dir.glob("*.db"):
        stale.unlink()
    env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    return env


#: The WSGI app the web process serves.
WEB_APP = "webhooks:create_app()"


def web_argv(host: str, port: int, workers: int, app: str = WEB_APP) -> list[str]:
    """The gunicorn command line of ``web`` and ``serve`` (``bench/ingest.py`` runs it too);
    every other gunicorn setting lives in ``webhooks/gunicorn_config.py``."""
    return [
        sys.executable, "-m", "gunicorn",
        "-c", "python:webhooks.gunicorn_config",
        "--bind", f"{host}:{port}",
        "--workers", str(workers),
        "--access-logfile", "-",
        "--no-control-socket",
        app,
    ]  # fmt: skip


def _spawn_web(env: dict[str, str], host: str, port: int, workers: int) -> subprocess.Popen:
    return subprocess.Popen(web_argv(host, port, workers), env=env, start_new_session=True)


def _spawn_worker(env: dict[str, str], processes: int, threads: int) -> subprocess.Popen:
    args = [
        sys.executable, "-m", "dramatiq", "worker.entrypoint",
        "--processes", str(processes), "--threads", str(threads),
    ]  # fmt: skip
    return subprocess.Popen(args, env=env, start_new_session=True)


def _supervise(settings: Settings, children: list[subprocess.Popen], redis_url: str) -> int:
    """Wait for Ctrl-C / SIGTERM or a child's death; sweep stale events every minute."""
    from worker.broker import build_broker
    from worker.maintenance import requeue_stale_events

    stopping = {"flag": False}

    def _on_signal(_signum: int, _frame: Any) -> None:
        stopping["flag"] = True

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    engine = open_engine(settings, migrate=False)
    broker = build_broker(redis_url, edge=False)
    next_sweep = time.monotonic() + 5
    while not stopping["flag"]:
        for child in children:
            if child.poll() is not None:
                click.echo(f"a child process exited with code {child.returncode}", err=True)
                return 1
        if time.monotonic() >= next_sweep:
            try:
                requeue_stale_events(
                    engine,
                    broker,
                    older_than=timedelta(seconds=settings.stale_event_seconds),
                    now=utc_now(),
                )
            except Exception as error:  # noqa: BLE001 - keep supervising; say what went wrong
                click.echo(f"stale-event sweep failed: {type(error).__name__}: {error}", err=True)
            next_sweep = time.monotonic() + 60
        time.sleep(0.2)
    return 0


def _stop(child: subprocess.Popen, timeout: float = 15) -> None:
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
