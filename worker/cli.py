"""The ``billing-ops`` command: serve, run the processes, replay events, work the cases."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from worker.errors import BillingOpsError
from worker.settings import Settings, load_settings


def _settings() -> Settings:
    try:
        return load_settings()
    except BillingOpsError as error:
        raise click.ClickException(str(error)) from None


def _now() -> datetime:
    return datetime.now(UTC)


def _engine(settings: Settings, migrate: bool = True):  # type: ignore[no-untyped-def]
    from worker.store.db import make_engine, upgrade_database

    engine = make_engine(settings.database_url)
    if migrate:
        upgrade_database(engine, settings.data_dir)
    return engine


@click.group()
def main() -> None:
    """billing-ops: Stripe billing-support triage for the people who run billing support."""


# --- processes ------------------------------------------------------------------------


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

    settings = _settings()
    configure_logging(settings.log_format)
    _engine(settings)
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
    settings = _settings()
    _engine(settings)
    env = _child_env(settings, settings.effective_redis_url)
    os.execvpe(sys.executable, _web_args(host, int(port), workers), env)


@main.command()
@click.option("--processes", default=2, show_default=True, type=int)
@click.option("--threads", default=4, show_default=True, type=int)
def worker(processes: int, threads: int) -> None:
    """The worker process tree (Dramatiq), with the stale-event sweeper."""
    settings = _settings()
    _engine(settings)
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


def _web_args(host: str, port: int, workers: int) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn",
        "--bind", f"{host}:{port}",
        "--workers", str(workers),
        "--access-logfile", "-",
        "--no-control-socket",
        "webhooks:create_app()",
    ]  # fmt: skip


def _spawn_web(env: dict[str, str], host: str, port: int, workers: int) -> subprocess.Popen:
    return subprocess.Popen(_web_args(host, port, workers), env=env, start_new_session=True)


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
    engine = _engine(settings, migrate=False)
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
                    now=_now(),
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


# --- setup and events -----------------------------------------------------------------


@main.command()
def secret() -> None:
    """Print the webhook signing secret (the first one, during a rotation)."""
    click.echo(_settings().webhook_secrets[0])


@main.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every Alembic migration."""
    _engine(_settings())
    click.echo("database is up to date")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--enqueue", is_flag=True, help="Put events on the queue for running workers.")
def replay(paths: tuple[Path, ...], enqueue: bool) -> None:
    """Feed Stripe event JSON (object, array or JSON Lines) through the pipeline, unsigned."""
    from worker.logs import configure_logging
    from worker.replay import ReplayInputError, expand_paths, read_events

    settings = _settings()
    configure_logging(settings.log_format)
    files = expand_paths(list(paths))
    try:
        bodies = [body for path in files for body in read_events(path)]
    except (ReplayInputError, OSError) as error:
        raise click.ClickException(str(error)) from None
    engine = _engine(settings)
    counts: dict[str, int] = {}
    if enqueue:
        from worker.broker import build_broker, event_message

        broker = build_broker(settings.effective_redis_url, edge=False)
        with click.progressbar(bodies, label="enqueueing", file=sys.stderr) as bar:
            for body in bar:
                broker.enqueue(event_message(body))
        click.echo(f"enqueued {len(bodies)} events", err=True)
        return
    from worker.pipeline import process_event

    with click.progressbar(bodies, label="replaying", file=sys.stderr) as bar:
        for body in bar:
            outcome = process_event(engine, body, config=settings.rules)
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
    click.echo(
        f"replayed {len(bodies)} events: "
        + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())),
        err=True,
    )


@main.group()
def events() -> None:
    """Stored events: failed ones, retries."""


@events.command("failed")
@click.option("--json", "as_json", is_flag=True)
def events_failed(as_json: bool) -> None:
    """List events that still failed after every retry."""
    from worker.store.events import FAILED, list_events

    rows = list_events(_engine(_settings()), FAILED)
    if as_json:
        click.echo(json.dumps([_event_doc(r) for r in rows], indent=2, default=str))
        return
    if not rows:
        click.echo("no failed events")
    for row in rows:
        click.echo(f"{row.id}  {row.type:<40} attempts={row.attempts}  {row.last_error or ''}")


def _event_doc(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "type": row.type,
        "status": row.status,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "updated_at": row.updated_at,
    }


@events.command("retry")
@click.argument("event_ids", nargs=-1)
@click.option("--all", "retry_all", is_flag=True, help="Retry every failed event.")
def events_retry(event_ids: tuple[str, ...], retry_all: bool) -> None:
    """Put failed events back on the queue."""
    from worker.broker import build_broker
    from worker.maintenance import requeue_events
    from worker.store.events import FAILED, list_events, reset_for_retry

    if not event_ids and not retry_all:
        raise click.UsageError("name event ids or pass --all")
    settings = _settings()
    engine = _engine(settings)
    ids = (
        [r.id for r in list_events(engine, FAILED, limit=100_000)] if retry_all else list(event_ids)
    )
    reset = reset_for_retry(engine, ids, _now())
    missing = sorted(set(ids) - set(reset))
    broker = build_broker(settings.effective_redis_url, edge=False)
    count = requeue_events(engine, broker, reset, _now())
    click.echo(f"requeued {count} events")
    if missing:
        click.echo(f"not failed or unknown, left alone: {', '.join(missing)}", err=True)


# --- operator surface -----------------------------------------------------------------


@main.group()
def cases() -> None:
    """Triage cases."""


@cases.command("list")
@click.option("--status", type=click.Choice(["open", "acknowledged", "resolved"]))
@click.option("--kind")
@click.option("--json", "as_json", is_flag=True)
def cases_list(status: str | None, kind: str | None, as_json: bool) -> None:
    """Cases, newest change first."""
    from rules.formatting import format_money
    from worker.cases import list_cases

    docs = list_cases(_engine(_settings()), status=status, kind=kind)
    if as_json:
        click.echo(json.dumps(docs, indent=2))
        return
    if not docs:
        click.echo("no cases")
        return
    click.echo(
        f"{'ID':>5}  {'STATUS':<12} {'SEV':<8} {'KIND':<22} {'CLASSIFICATION':<21} "
        f"{'AT STAKE':>14}  CUSTOMER"
    )
    for doc in docs:
        impact = doc["revenue_impact"]
        stake = format_money(
            impact["amount_minor"] or impact["mrr_at_risk_minor"], impact["currency"]
        )
        customer = doc["customer"]
        who = f"{customer.get('name') or ''} <{customer.get('email_masked') or customer['id']}>"
        click.echo(
            f"{doc['id']:>5}  {doc['status']:<12} {doc['severity']:<8} {doc['kind']:<22} "
            f"{doc['classification']:<21} {stake:>14}  {who.strip()}"
        )


def _case_id(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise click.BadParameter(f"case ids are numbers, got {raw!r}") from None


@cases.command("show")
@click.argument("case_id")
@click.option("--json", "as_json", is_flag=True)
def cases_show(case_id: str, as_json: bool) -> None:
    """One case: the six-section handoff and its timeline."""
    from worker.cases import get_case
    from worker.handoff import handoff_text

    try:
        doc = get_case(_engine(_settings()), _case_id(case_id))
    except BillingOpsError as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    click.echo(
        f"case {doc['id']} [{doc['status']}] {doc['kind']} / {doc['classification']}"
        f" / {doc['severity']}   opened {doc['opened_at']}\n"
    )
    click.echo(handoff_text(doc["handoff"]))
    click.echo("\nTIMELINE")
    for entry in doc["timeline"]:
        click.echo(
            f"  {entry['at']}  {entry['actor']:<12} {entry['action']:<14} {entry['note'] or ''}"
        )


@cases.command("ack")
@click.argument("case_id")
@click.option("--by", "actor", default=lambda: os.environ.get("USER", "operator"))
@click.option("--note")
def cases_ack(case_id: str, actor: str, note: str | None) -> None:
    """Acknowledge a case: someone is on it."""
    _transition(case_id, "acknowledged", actor, note)


@cases.command("resolve")
@click.argument("case_id")
@click.option("--note", required=True, help="What was done.")
@click.option("--by", "actor", default=lambda: os.environ.get("USER", "operator"))
def cases_resolve(case_id: str, note: str, actor: str) -> None:
    """Resolve a case with a note of what was done."""
    _transition(case_id, "resolved", actor, note)


def _transition(case_id: str, status: str, actor: str, note: str | None) -> None:
    from worker.cases import set_status

    try:
        doc = set_status(
            _engine(_settings()), _case_id(case_id), status, actor=actor, note=note, now=_now()
        )
    except BillingOpsError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"case {doc['id']} is {doc['status']}")


@main.command()
@click.argument("query")
@click.option("--json", "as_json", is_flag=True)
def lookup(query: str, as_json: bool) -> None:
    """Who is this? An email, cus_, sub_, in_ or ch_ id → customers, subscriptions, anomalies."""
    from worker.lookup import LookupQueryError
    from worker.lookup import lookup as do_lookup

    try:
        doc = do_lookup(_engine(_settings()), query)
    except LookupQueryError as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    if not doc["found"]:
        click.echo(f"nothing known about {doc['query']}")
        return
    for customer in doc["customers"]:
        click.echo(
            f"customer {customer['id']}  {customer['name'] or ''} <{customer['email'] or ''}>"
        )
    for label in ("active", "canceled"):
        click.echo(f"{label} subscriptions:")
        for sub in doc["subscriptions"][label] or [{"id": "none"}]:
            items = ", ".join(
                f"{i['quantity']}× {i['product']} {i['amount']}/{i['interval']}"
                for i in sub.get("items", [])
            )
            click.echo(f"  {sub['id']} {sub.get('status', '')} {items}")
    click.echo("recent invoices:")
    for inv in doc["invoices"] or [{"id": "none"}]:
        click.echo(
            f"  {inv['id']} {inv.get('status', '')} {inv.get('billing_reason') or ''} "
            f"{inv.get('amount_due', '')}"
        )
    click.echo("anomalies: " + ("; ".join(doc["anomalies"]) or "none"))
    for case in doc["cases"]:
        click.echo(f"case {case['id']} [{case['status']}] {case['key']}")


# --- notifications ----------------------------------------------------------------------


@main.command()
@click.option("--since", default="24h", show_default=True, help="Window for new cases: 24h, 7d…")
@click.option(
    "--to",
    "target",
    type=click.Choice(["stdout", "slack", "email"]),
    default="stdout",
    show_default=True,
)
def digest(since: str, target: str) -> None:
    """Open cases by kind with the money at stake, to stdout, Slack or DIGEST_EMAIL_TO."""
    from worker.errors import DeliveryError
    from worker.notifications import digest as digests
    from worker.notifications.delivery import Channels
    from worker.notifications.slack import plain_message

    settings = _settings()
    try:
        window = digests.parse_duration(since)
    except BillingOpsError as error:
        raise click.BadParameter(str(error), param_hint="--since") from None
    now = _now()
    summary = digests.build_digest(_engine(settings), since=now - window, now=now)
    text = digests.render_text(summary)
    if target == "stdout":
        click.echo(text)
        return
    channels = Channels.from_settings(settings)
    try:
        if target == "slack":
            if channels.slack is None:
                raise click.ClickException("Slack is not configured (SLACK_WEBHOOK_URL or token)")
            channels.slack.post(plain_message(text))
        else:
            if channels.email is None or not settings.email_from or not settings.digest_email_to:
                raise click.ClickException("email needs SMTP_URL, EMAIL_FROM and DIGEST_EMAIL_TO")
            channels.email.send(
                digests.digest_email(
                    text,
                    sender=settings.email_from,
                    to=settings.digest_email_to,
                    open_cases=summary.open,
                )
            )
    except DeliveryError as error:
        raise click.ClickException(f"digest not sent: {error}") from None
    click.echo(f"digest sent to {target}: {summary.open} open case(s)")


@main.group()
def outbox() -> None:
    """Notifications waiting, sent, failed or skipped."""


@outbox.command("list")
@click.option(
    "--status", type=click.Choice(["pending", "sending", "sent", "failed", "cancelled", "skipped"])
)
@click.option("--json", "as_json", is_flag=True)
def outbox_list(status: str | None, as_json: bool) -> None:
    from worker.notifications import outbox as outbox_store

    rows = outbox_store.list_rows(_engine(_settings()), status=status)
    docs = [
        {
            "id": r.id,
            "case_id": r.case_id,
            "channel": r.channel,
            "reason": r.reason,
            "status": r.status,
            "attempts": r.attempts,
            "last_error": r.last_error,
            "updated_at": r.updated_at.isoformat(),
        }
        for r in rows
    ]
    if as_json:
        click.echo(json.dumps(docs, indent=2))
        return
    for d in docs:
        error = f"  {d['last_error']}" if d["last_error"] else ""
        click.echo(
            f"{d['id']:>6} case {d['case_id']:<6} {d['channel']:<6} {d['reason']:<17} "
            f"{d['status']:<9} attempts {d['attempts']}{error}"
        )


@outbox.command("retry")
@click.argument("outbox_ids", nargs=-1, type=int, required=True)
def outbox_retry(outbox_ids: tuple[int, ...]) -> None:
    """Put failed notifications back on the queue (after fixing an address or a hook)."""
    from worker.broker import build_broker
    from worker.notifications import outbox as outbox_store
    from worker.notifications.queue import enqueue_notifications

    settings = _settings()
    engine = _engine(settings)
    reset = outbox_store.reset_failed(engine, list(outbox_ids), _now())
    count = enqueue_notifications(build_broker(settings.effective_redis_url, edge=False), reset)
    click.echo(f"requeued {count} notification(s)")
