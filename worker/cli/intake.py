"""Setting up and feeding events: ``secret``, ``db upgrade``, ``replay``, ``events``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import structlog

from worker.cli.app import (
    cli_settings,
    configure_cli_logging,
    main,
    open_engine,
    require_redis,
    utc_now,
)
from worker.cli.clock import INSTANT, run_instant
from worker.cli.output import clean, say
from worker.settings import Process

log = structlog.get_logger()


@main.command()
def secret() -> None:
    """Print the webhook signing secret serve uses (the first one, during a rotation)."""
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
    """Feed Stripe event JSON (object, array or JSON Lines) through the pipeline, unsigned.

    Folders are read for their *.json and *.jsonl files; a file that holds no Stripe events
    is skipped with a warning. The summary goes to stdout, logs to stderr, and a progress bar
    to a terminal.
    """
    from worker.replay import check_files, events_of, expand_paths

    settings = cli_settings()
    configure_cli_logging(settings)
    files, skipped, count = check_files(expand_paths(list(paths)))
    for file in skipped:
        log.warning("replay_file_skipped", path=str(file.path), reason=file.reason)
    if not count:
        raise click.ClickException(
            "no Stripe events in " + ", ".join(str(p) for p in paths) + " (event JSON: one "
            "object, an array, or JSON Lines)"
        )
    moment = run_instant(now)
    if enqueue:
        from worker.broker import build_broker, event_message

        require_redis(settings)
        open_engine(settings)
        broker = build_broker(settings.effective_redis_url, edge=False)
        with _progress(events_of(files), count, "enqueueing") as bar:
            for body in bar:
                broker.enqueue(event_message(body))
        click.echo(f"enqueued {count} events")
        return
    from worker.replay import replay_events

    engine = open_engine(settings)
    with _progress(events_of(files), count, "replaying") as bar:
        summary = replay_events(engine, bar, config=settings.rules, now=moment)
    click.echo(summary.line())


def _progress(items: Iterator[str], length: int, label: str) -> Any:
    """A progress bar on a terminal (stderr); a plain pass over ``items`` anywhere else, so a
    log collector gets no bar frames."""
    if sys.stderr.isatty():
        return click.progressbar(items, length=length, label=label, file=sys.stderr)
    return nullcontext(items)


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
    failed = [r.id for r in list_events(engine, FAILED, limit=100_000)]
    ids = failed if retry_all else [i for i in dict.fromkeys(event_ids) if i in set(failed)]
    missing = [] if retry_all else sorted(set(event_ids) - set(failed))
    if ids:
        require_redis(settings)  # before any change: a refusal leaves nothing half done
        reset = reset_for_retry(engine, ids, utc_now())
        missing += sorted(set(ids) - set(reset))  # retried by someone else meanwhile
        broker = build_broker(settings.effective_redis_url, edge=False)
        click.echo(f"requeued {requeue_events(engine, broker, reset, utc_now())} events")
    elif retry_all:
        click.echo("no failed events")
    if missing:  # like rm of a missing file: the others are done, the exit says not all
        raise click.ClickException(
            f"not failed or unknown, left alone: {clean(', '.join(missing))} "
            "(see billing-ops events failed)"
        )
