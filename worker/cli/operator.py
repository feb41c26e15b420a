"""The operator surface: ``cases`` and ``lookup``."""

from __future__ import annotations

import getpass
import json

import click

from worker.cli.app import cli_settings, main, open_engine, utc_now
from worker.cli.output import clean, say
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
        say("no cases")
        return
    say(
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
        say(
            f"{doc['id']:>5}  {doc['status']:<12} {doc['severity']:<8} {doc['kind']:<22} "
            f"{doc['classification']:<21} {clean(stake):>14}  {clean(who.strip())}"
        )


def _case_id(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise click.BadParameter(f"case ids are numbers, got {clean(repr(raw))}") from None


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
        raise click.ClickException(clean(str(error))) from None
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    say(
        f"case {doc['id']} [{doc['status']}] {doc['kind']} / {doc['classification']}"
        f" / {doc['severity']}   opened {doc['opened_at']}\n"
    )
    say(handoff_text(doc["handoff"]))
    if doc["dashboard_links"]:
        mode = "live" if doc["livemode"] else "test mode"
        say(f"\nSTRIPE DASHBOARD ({mode})")
        for object_id, url in doc["dashboard_links"].items():
            say(f"  {clean(object_id):<30} {url}")
    if doc["actions"]:
        say("\nAUDIT")
        for entry in doc["actions"]:
            say(
                f"  {entry['at']}  {clean(entry['actor']):<12} {entry['action']:<34} "
                f"{entry['result']:<9} {clean(entry['target'] or '-')}  "
                f"request {entry['stripe_request_id'] or '-'}  key {entry['idempotency_key']}"
            )
    say("\nTIMELINE")
    for entry in doc["timeline"]:
        version = clean(entry.get("api_version") or "")
        if entry.get("api_version_read_as"):
            version += f" (read as {entry['api_version_read_as']})"
        say(
            f"  {entry['at']}  {clean(entry['actor']):<12} {entry['action']:<14} "
            f"{clean(entry['note'] or '')}" + (f"  [API {version}]" if version else "")
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
        raise click.ClickException(clean(str(error))) from None
    say(f"case {doc['id']} is {doc['status']}")


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
        raise click.ClickException(clean(str(error))) from None
    if as_json:
        click.echo(json.dumps(doc, indent=2))
    elif not doc["found"]:
        say(f"nothing known about {clean(doc['query'])}")
    if not doc["found"]:  # like grep: exit 1 when nothing matched
        raise SystemExit(1)
    if as_json:
        return
    for customer in doc["customers"]:
        say(
            f"customer {clean(customer['id'])}  {clean(customer['name'] or '')} "
            f"<{clean(customer['email'] or '')}>"
        )
    for label in ("active", "canceled"):
        say(f"{label} subscriptions:")
        for sub in doc["subscriptions"][label] or [{"id": "none"}]:
            items = ", ".join(
                f"{i['quantity']}× {i['product']} {i['amount']}/{i['interval']}"
                for i in sub.get("items", [])
            )
            say(f"  {clean(sub['id'])} {clean(sub.get('status', ''))} {clean(items)}")
    say("recent invoices:")
    for inv in doc["invoices"] or [{"id": "none"}]:
        say(
            f"  {clean(inv['id'])} {clean(inv.get('status', ''))} "
            f"{clean(inv.get('billing_reason') or '')} {clean(inv.get('amount_due', ''))}"
        )
    say("anomalies: " + clean("; ".join(doc["anomalies"]) or "none"))
    for case in doc["cases"]:
        say(f"case {case['id']} [{clean(case['status'])}] {clean(case['key'])}")
