"""The ``billing-ops`` command group and what every command shares."""

from __future__ import annotations

import logging
import sys

import click
from sqlalchemy import Engine

from worker.errors import BillingOpsError
from worker.pipeline import utc_now
from worker.settings import Process, Settings, load_settings
from worker.store.db import make_engine, upgrade_database
from worker.urls import safe_url

__all__ = [
    "cli_settings",
    "configure_cli_logging",
    "main",
    "open_engine",
    "require_redis",
    "safe_url",
    "utc_now",
]


def cli_settings(*, process: Process = Process.COMMAND, existing_install: bool = False) -> Settings:
    """Settings from the environment; a configuration error is a clean CLI error.

    ``process`` says which defaults the command may take (only ``serve`` generates a secret
    or runs its own Redis); ``existing_install`` commands refuse a data dir that does not
    exist (see ``load_settings``).
    """
    try:
        return load_settings(process=process, existing_install=existing_install)
    except BillingOpsError as error:
        raise click.ClickException(str(error)) from None


def configure_cli_logging(settings: Settings) -> None:
    """Logging for a one-off command. On a terminal the progress, the warnings and the summary
    are the interface: only warnings and errors are logged there; elsewhere every log line goes
    to the collector (stderr, like every process)."""
    from worker.logs import configure_logging

    quiet = sys.stderr.isatty()
    configure_logging(settings.log_format, level=logging.WARNING if quiet else logging.INFO)


def open_engine(settings: Settings, migrate: bool = True) -> Engine:
    """The store's engine, migrated to the current schema unless told otherwise.

    A bad ``DATABASE_URL`` or an unreachable database is one line on stderr and exit 1.
    """
    try:
        engine = make_engine(settings.database_url)
        if migrate:
            upgrade_database(engine, settings.data_dir)
    except BillingOpsError as error:
        raise click.ClickException(str(error)) from None
    return engine


def require_redis(settings: Settings) -> None:
    """The Redis this command needs answers, or one line: where, why, and what to do.

    Checked before anything is changed, so a refused command leaves nothing half done.
    """
    from worker.broker import ping_redis

    try:
        ping_redis(settings.effective_redis_url)
    except BillingOpsError as error:
        hint = (
            "start billing-ops serve here, or set REDIS_URL to a running Redis"
            if settings.embedded_redis
            else "start Redis there or fix REDIS_URL"
        )
        raise click.ClickException(f"{error}: {hint}") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="billing-ops", prog_name="billing-ops")
def main() -> None:
    """billing-ops: Stripe billing-support triage for the people who run billing support."""
