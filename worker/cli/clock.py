"""``billing-ops clock run``: one clock run now (or at ``--now``), for operators and tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import click

from worker.cli.app import cli_settings, main, open_engine, utc_now


class Instant(click.ParamType):
    """An ISO 8601 instant (``2026-07-01T09:00:00Z``); one without a zone is UTC."""

    name = "instant"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 instant (e.g. 2026-07-01T09:00:00Z)")
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


INSTANT = Instant()
#: How far ahead of this machine's clock a --now may be (clock skew between machines).
MAX_NOW_AHEAD = timedelta(minutes=5)


def run_instant(now: datetime | None) -> datetime:
    """``--now`` or the wall clock; a future instant is refused: people evaluated at it would
    never be evaluated earlier again, so live operation would run ahead of real time."""
    current = utc_now()
    if now is None:
        return current
    if now > current + MAX_NOW_AHEAD:
        raise click.BadParameter(
            f"{now.isoformat()} is in the future; the clock only runs at or before now",
            param_hint="--now",
        )
    return now


@main.group()
def clock() -> None:
    """The clock: re-evaluate people whose trial, card, dispute or invoice time has come."""


@clock.command("run")
@click.option("--now", "now", type=INSTANT, default=None, help="Run as of this instant.")
def clock_run(now: datetime | None) -> None:
    """Run the clock once (the workers run it every BILLING_OPS_CLOCK_INTERVAL_SECONDS)."""
    from worker.clock.run import run_clock
    from worker.logs import configure_logging
    from worker.notifications.planning import NotifyPolicy

    settings = cli_settings()
    configure_logging(settings.log_format)
    engine = open_engine(settings)
    moment = run_instant(now)
    result = run_clock(
        engine, moment, config=settings.rules, notify=NotifyPolicy.from_settings(settings)
    )
    if not result.ran:
        click.echo("another clock run holds the lease; nothing done")
        return
    if result.outbox_ids:
        _enqueue_notifications(settings, list(result.outbox_ids))
    click.echo(
        f"clock run at {moment.isoformat()}: evaluated {len(result.evaluated)} people; "
        f"cases opened {len(result.cases_opened)}, updated {len(result.cases_updated)}, "
        f"resolved {len(result.cases_resolved)}"
    )


def _enqueue_notifications(settings: Any, outbox_ids: list[int]) -> None:
    """Hand planned notifications to the workers; without Redis the workers' sweep will."""
    from worker.broker import build_broker
    from worker.notifications.queue import enqueue_notifications

    broker = build_broker(settings.effective_redis_url, edge=True)
    if enqueue_notifications(broker, outbox_ids) < len(outbox_ids):
        click.echo("some notifications are not queued yet; the workers' sweep will", err=True)
