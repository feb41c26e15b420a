"""The ``billing-ops`` command group and what every command shares."""

from __future__ import annotations

import click
from sqlalchemy import Engine

from worker.errors import BillingOpsError
from worker.pipeline import utc_now
from worker.settings import Settings, load_settings
from worker.store.db import make_engine, upgrade_database

__all__ = ["cli_settings", "main", "open_engine", "utc_now"]


def cli_settings() -> Settings:
    """Settings from the environment; a configuration error is a clean CLI error."""
    try:
        return load_settings()
    except BillingOpsError as error:
        raise click.ClickException(str(error)) from None


def open_engine(settings: Settings, migrate: bool = True) -> Engine:
    """The store's engine, migrated to the current schema unless told otherwise."""
    engine = make_engine(settings.database_url)
    if migrate:
        upgrade_database(engine, settings.data_dir)
    return engine


@click.group()
def main() -> None:
    """billing-ops: Stripe billing-support triage for the people who run billing support."""
