"""Setting up and feeding events: ``secret``, ``db upgrade``, ``replay``, ``events``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from worker.cli.app import cli_settings, main, open_engine, utc_now
from worker.cli.clock import INSTANT, run_instant
from worker.cli.output import clean, say
from worker.errors import BillingOpsError
from worker.settings import Process


@main.command()
def secret() -> None:
    """Print the webhook signing secret ``serve`` uses (the first one, during a rotation)."""
    click.echo(cli_settings(process=Process.ALL_IN_ONE).webhook_secrets[0])


@main.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every Alembic migration."""
    open_engine(cli_settings())
    click.echo("database is up to date")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--enqueue", is_flag=True, help="Put events on the queue for running workers.")
@click.option("--now", type=INSTANT, default=None, help="Run the closing clock as of this instant.")
def replay(paths: tuple[Path, ...], enqueue: bool, now: datetime | None) -> None:
    """Feed Stripe event JSON (object, array or JSON Lines) through the pipeline, unsigned."""
    from worker.logs import configure_logging
    from worker.replay import ReplayInputError, expand_paths, read_events

    settings = cli_settings()
    configure_logging(settings.log_format)
    files = expand_paths(list(paths))
    try:  # every file checked before anything is processed; one event in memory at a time
        count = sum(1 for path in files for _ in read_events(path))
    except (ReplayInputError, OSError) as error:
        raise click.ClickException(str(error)) from None

    def bodies() -> Iterator[str]:
        for path in files:
            yield from read_events(path)

    moment = run_instant(now)
    engine = open_engine(settings)
    if enqueue:
        from worker.broker import build_broker, event_message, ping_redis

        try:
            ping_redis(settings.effective_redis_url)
        except BillingOpsError as error:
            raise click.ClickException(
                f"{error}: start billing-ops serve or set REDIS_URL to a running Redis"
            ) from None
        broker = build_broker(settings.effective_redis_url, edge=False)
        with click.progressbar(bodies(), length=count, label="enqueueing", file=sys.stderr) as bar:
            for body in bar:
                broker.enqueue(event_message(body))
        click.echo(f"enqueued {count} events", err=True)
        return
    from worker.replay import replay_events

    with click.progressbar(bodies(), length=count, label="replaying", file=sys.stderr) as bar:
        summary = replay_events(engine, bar, config=settings.rules, now=moment)
    click.echo(
        f"replayed {count} events: "
        + ", ".join(f"{n} {status}" for status, n in sorted(summary.counts.items()))
        + f"; clock evaluated {len(summary.clock.evaluated)} people",
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

    rows = list_events(open_engine(cli_settings(existing_install=True)), FAILED)
    if as_json:
        click.echo(json.dumps([_event_doc(r) for r in rows], indent=2, default=str))
        return
    if not rows:
        click.echo("no failed events")
    for row in rows:
        say(
            f"{clean(row.id)}  {clean(row.type):<40} attempts={row.attempts}  "
            f"{clean(row.last_error or '')}"
        )


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
    settings = cli_settings(existing_install=True)
    engine = open_engine(settings)
    ids = (
        [r.id for r in list_events(engine, FAILED, limit=100_000)] if retry_all else list(event_ids)
    )
    reset = reset_for_retry(engine, ids, utc_now())
    missing = sorted(set(ids) - set(reset))
    broker = build_broker(settings.effective_redis_url, edge=False)
    count = requeue_events(engine, broker, reset, utc_now())
    click.echo(f"requeued {count} events")
    if missing:
        say(f"not failed or unknown, left alone: {clean(', '.join(missing))}", err=True)
