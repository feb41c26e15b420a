"""Pulling an existing Stripe account in: ``sync`` (current state) and ``backfill`` (events)."""

from __future__ import annotations

import sys
import time

import click

from worker.cli.app import cli_settings, configure_cli_logging, main, open_engine, utc_now
from worker.settings import Settings


def _since(text: str) -> int:
    from worker.notifications.digest import parse_duration

    try:
        window = parse_duration(text)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--since") from None
    return int((utc_now() - window).timestamp())


def _key(settings: Settings) -> str:
    if not settings.stripe_api_key:
        raise click.ClickException(
            "STRIPE_API_KEY is not set: sync and backfill read the account through the "
            "Stripe API (a restricted key with read access is enough)"
        )
    return settings.stripe_api_key


class ProgressLine:
    """A progress line on a terminal (stderr), nothing otherwise."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.started = self.last = time.monotonic()
        self.label = ""

    def __call__(self, label: str, count: int) -> None:
        """One line per kind, rewritten in place as its pages come in."""
        if not self.enabled:
            return
        now = time.monotonic()
        if label != self.label:  # this kind's clock starts where the previous one stopped
            self.done()
            self.label, self.started = label, self.last
        self.last = now
        rate = count / max(now - self.started, 1e-3)
        click.echo(f"\r{label:<20} {count:>8} objects {rate:>7.0f}/s", nl=False, err=True)

    def done(self) -> None:
        if self.enabled and self.label:
            click.echo("", err=True)
        self.label = ""

    def warn(self, line: str) -> None:
        """A warning on its own line, not glued to the progress line."""
        self.done()
        click.echo(line, err=True)


RATE = click.option(
    "--rate", default=20.0, show_default=True, help="Stripe API requests per second at most."
)


@main.command()
@click.option(
    "--since", default="90d", show_default=True, help="Window for invoices, charges, disputes."
)
@click.option("--only", default=None, help="Comma-separated kinds (default: all).")
@RATE
def sync(since: str, only: str | None, rate: float) -> None:
    """Pull the account's current state from the Stripe API, then open today's cases."""
    from worker.sync.client import paced_client
    from worker.sync.kinds import BY_NAME, KIND_NAMES
    from worker.sync.run import run_sync

    names = [n.strip() for n in only.split(",") if n.strip()] if only else list(KIND_NAMES)
    unknown = sorted(set(names) - set(KIND_NAMES))
    if unknown:
        raise click.BadParameter(
            f"unknown kind {', '.join(unknown)} (kinds: {', '.join(KIND_NAMES)})",
            param_hint="--only",
        )
    settings = cli_settings()
    configure_cli_logging(settings)
    client, http = paced_client(_key(settings), settings.stripe_api_base, rate=rate)
    progress = ProgressLine()
    summary = run_sync(
        open_engine(settings),
        client,
        http,
        kinds=[BY_NAME[n] for n in names],
        since=_since(since),
        config=settings.rules,
        progress=progress,
        warn=progress.warn,
    )
    progress.done()
    click.echo(summary.line())


@main.command()
@click.option("--since", default="30d", show_default=True, help="Stripe keeps 30 days of events.")
@RATE
def backfill(since: str, rate: float) -> None:
    """Process the recent events Stripe still keeps, oldest first, as webhooks would be."""
    from worker.sync.backfill import run_backfill
    from worker.sync.client import paced_client

    settings = cli_settings()
    configure_cli_logging(settings)
    client, http = paced_client(_key(settings), settings.stripe_api_base, rate=rate)
    progress = ProgressLine()
    summary = run_backfill(
        open_engine(settings),
        client,
        http,
        since=_since(since),
        config=settings.rules,
        progress=progress,
    )
    progress.done()
    click.echo(summary.line())
