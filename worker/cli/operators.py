"""``billing-ops operators``: add (prints the token once), list, remove."""

from __future__ import annotations

import click

from worker.cli.app import cli_settings, main, open_engine, utc_now
from worker.cli.output import clean, say
from worker.logs import configure_logging


@main.group()
def operators() -> None:
    """Operators and their API / console tokens (OPERATOR_TOKEN stays the single admin)."""


@operators.command("add")
@click.argument("name")
@click.option("--admin", "is_admin", is_flag=True, help="An admin like OPERATOR_TOKEN's holder.")
def operators_add(name: str, is_admin: bool) -> None:
    """Add an operator and print their token: it is shown this once and stored only hashed."""
    from worker.operators import OperatorError, add_operator

    settings = cli_settings(existing_install=True)
    # The token alone goes to stdout (so ``$(billing-ops operators add x)`` captures it); the
    # audit log line goes to stderr, where every log line goes.
    configure_logging(settings.log_format)
    engine = open_engine(settings)
    try:
        token = add_operator(engine, name, is_admin=is_admin, now=utc_now())
    except OperatorError as error:
        raise click.ClickException(clean(str(error))) from None
    say(f"operator {name} added; their token (shown once, keep it somewhere safe):", err=True)
    click.echo(token)


@operators.command("list")
def operators_list() -> None:
    """Operators by name (never their tokens)."""
    from worker.cases import iso
    from worker.operators import list_operators

    rows = list_operators(open_engine(cli_settings(existing_install=True)))
    if not rows:
        say("no operators (OPERATOR_TOKEN, when set, is the only admin)")
        return
    say(f"{'NAME':<24} {'ROLE':<9} ADDED")
    for row in rows:
        role = "admin" if row.is_admin else "operator"
        say(f"{clean(row.name):<24} {role:<9} {iso(row.created_at)}")


@operators.command("remove")
@click.argument("name")
def operators_remove(name: str) -> None:
    """Remove an operator: their token stops working at once; their audit rows stay."""
    from worker.operators import OperatorError, remove_operator

    settings = cli_settings(existing_install=True)
    configure_logging(settings.log_format)
    try:
        remove_operator(open_engine(settings), name)
    except OperatorError as error:
        raise click.ClickException(clean(str(error))) from None
    say(f"operator {name} removed")
