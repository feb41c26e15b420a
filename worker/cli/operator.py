"""The operator surface: ``cases`` and ``lookup``."""

from __future__ import annotations

import getpass
import json

import click

from worker.cli.app import cli_settings, main, open_engine, utc_now
from worker.errors import BillingOpsError


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

    docs = list_cases(open_engine(cli_settings(existing_install=True)), status=status, kind=kind)
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
        doc = get_case(open_engine(cli_settings(existing_install=True)), _case_id(case_id))
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
@click.option("--by", "actor", default=getpass.getuser)
@click.option("--note")
def cases_ack(case_id: str, actor: str, note: str | None) -> None:
    """Acknowledge a case: someone is on it."""
    _transition(case_id, "acknowledged", actor, note)


@cases.command("resolve")
@click.argument("case_id")
@click.option("--note", required=True, help="What was done.")
@click.option("--by", "actor", default=getpass.getuser)
def cases_resolve(case_id: str, note: str, actor: str) -> None:
    """Resolve a case with a note of what was done."""
    _transition(case_id, "resolved", actor, note)


def _transition(case_id: str, status: str, actor: str, note: str | None) -> None:
    from worker.cases import set_status

    try:
        doc = set_status(
            open_engine(cli_settings(existing_install=True)),
            _case_id(case_id),
            status,
            actor=actor,
            note=note,
            now=utc_now(),
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
        doc = do_lookup(open_engine(cli_settings(existing_install=True)), query)
    except LookupQueryError as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        click.echo(json.dumps(doc, indent=2))
    elif not doc["found"]:
        click.echo(f"nothing known about {doc['query']}")
    if not doc["found"]:  # like grep: exit 1 when nothing matched
        raise SystemExit(1)
    if as_json:
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
