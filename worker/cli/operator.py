"""The operator surface: ``cases`` and ``lookup``."""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from worker.cli.app import cli_settings, main, open_engine, utc_now
from worker.cli.output import clean, say
from worker.errors import BillingOpsError

if TYPE_CHECKING:
    from worker.case_queries import CaseQuery


@main.group()
def cases() -> None:
    """Triage cases."""


def case_query_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The case-list filters and sort as options (``--opened-since`` for ``opened_since``),
    the same names and values as ``GET /api/cases`` (``worker/case_queries.py``)."""
    options = [
        click.option("--status", help="open, acknowledged, resolved (comma-separated: any)"),
        click.option("--kind", help="e.g. duplicate_charge,dispute"),
        click.option("--severity", help="low, medium, high, critical (comma-separated: any)"),
        click.option("--classification", help="e.g. accidental_duplicate"),
        click.option("--customer", help="a cus_ id or an email: every record of that person"),
        click.option("--currency", help="three-letter code: only cases in that currency"),
        click.option(
            "--opened-since",
            "--since",
            "opened_since",
            help="ISO 8601; cases opened at or after it",
        ),
        click.option("--updated-since", help="ISO 8601; cases changed at or after it"),
        click.option(
            "--sort",
            help="updated_at, opened_at (age) or at_stake (money, within each currency); "
            "- in front: descending. Default -updated_at",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def parse_cli_query(**given: str | None) -> CaseQuery:
    """The options given, through the one case-list parser; a bad one is a usage error that
    names the option."""
    from worker.case_queries import CaseQueryError, parse_case_query

    try:
        return parse_case_query({k: v for k, v in given.items() if v is not None})
    except CaseQueryError as error:
        allowed = f" (allowed: {', '.join(error.allowed)})" if error.allowed else ""
        raise click.BadParameter(
            clean(error.message) + allowed, param_hint="--" + error.parameter.replace("_", "-")
        ) from None


@cases.command("list")
@case_query_options
@click.option("--limit", help="cases per page, 1 to 200 (default 50)")
@click.option("--cursor", help="the next page, as the previous page printed it")
@click.option("--json", "as_json", is_flag=True, help="the page's cases as a JSON array")
def cases_list(as_json: bool, **given: str | None) -> None:
    """Cases, newest change first; one page at a time (its total and next cursor on stderr)."""
    from rules.formatting import format_money
    from worker.case_queries import find_cases

    query = parse_cli_query(**given)
    page = find_cases(open_engine(cli_settings(existing_install=True)), query)
    if as_json:
        click.echo(json.dumps([case.as_json() for case in page.cases], indent=2))
    elif page.cases:
        say(
            f"{'ID':>5}  {'STATUS':<12} {'SEV':<8} {'KIND':<22} {'CLASSIFICATION':<21} "
            f"{'AT STAKE':>14}  CUSTOMER"
        )
    for case in () if as_json else page.cases:
        stake = format_money(case.at_stake_minor, case.currency)
        who = f"{case.customer.name or ''} <{case.customer.email_masked or case.customer.id}>"
        say(
            f"{case.id:>5}  {case.status.value:<12} {case.severity:<8} {case.kind:<22} "
            f"{case.classification:<21} {clean(stake):>14}  {clean(who.strip())}"
        )
    if not page.cases and not as_json:
        say("no cases")
    if page.next_cursor:
        say(
            f"{len(page.cases)} of {page.total} cases; next page: --cursor {page.next_cursor}",
            err=True,
        )


@cases.command("export")
@click.option(
    "--format", "fmt", type=click.Choice(["jsonl", "csv"]), required=True, help="output format"
)
@case_query_options
def cases_export(fmt: str, **given: str | None) -> None:
    """Every matching case to stdout, one flat record each (default order: oldest first).

    Emails masked, amounts in minor units beside the currency; CSV cells that a spreadsheet
    would run as a formula are neutralised with a leading '."""
    import sys

    from worker.case_export import ExportFormat, write_export
    from worker.case_queries import iter_cases

    query = parse_cli_query(**({"sort": "opened_at"} | {k: v for k, v in given.items() if v}))
    engine = open_engine(cli_settings(existing_install=True))
    count = write_export(iter_cases(engine, query), sys.stdout, ExportFormat(fmt))
    say(f"exported {count} cases", err=True)


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
    """Acknowledge a case: someone is on it.

    Again on an acknowledged case: nothing changes. On a resolved case: refused (exit 1);
    billing-ops reopens a resolved case itself when its problem grows.
    """
    _transition(case_id, "acknowledged", actor, note)


@cases.command("resolve")
@click.argument("case_id")
@click.option("--note", required=True, help="What was done.")
@click.option("--by", "actor", default=getpass.getuser)
def cases_resolve(case_id: str, note: str, actor: str) -> None:
    """Resolve a case with a note of what was done (again on a resolved case: nothing changes)."""
    _transition(case_id, "resolved", actor, note)


def _transition(case_id: str, status: str, actor: str, note: str | None) -> None:
    from worker.cases import change_status

    try:
        change = change_status(
            open_engine(cli_settings(existing_install=True)),
            _case_id(case_id),
            status,
            actor=actor,
            note=note,
            now=utc_now(),
        )
    except BillingOpsError as error:
        raise click.ClickException(clean(str(error))) from None
    doc = change.case
    if change.changed:
        say(f"case {doc['id']} is {doc['status']}")
    else:
        say(f"case {doc['id']} is already {doc['status']}; nothing changed")


@main.command()
@click.argument("query")
@click.option("--json", "as_json", is_flag=True)
def lookup(query: str, as_json: bool) -> None:
    """Who is this? An email, cus_, sub_, in_ or ch_ id → customers, subscriptions, anomalies."""
    from rules.formatting import format_money
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
        subs = doc["subscriptions"][label]
        say(f"{label} subscriptions:" + ("" if subs else " none"))
        for sub in subs:
            items = ", ".join(
                f"{i['quantity']}× {i['product']} "
                f"{format_money(i['unit_amount_minor'], i['currency'])}/{i['interval']}"
                for i in sub.get("items", [])
            )
            say(f"  {clean(sub['id'])} {clean(sub.get('status', ''))} {clean(items)}")
    say("recent invoices:" + ("" if doc["invoices"] else " none"))
    for inv in doc["invoices"]:
        amount = format_money(inv["amount_due_minor"], inv["currency"])
        say(
            f"  {clean(inv['id'])} {clean(inv.get('status', ''))} "
            f"{clean(inv.get('billing_reason') or '')} {clean(amount)}"
        )
    say("recent charges:" + ("" if doc["charges"] else " none"))
    for charge in doc["charges"]:
        amount = format_money(charge["amount_minor"], charge["currency"])
        flags = [f for f in ("refunded", "disputed") if charge.get(f)]
        say(
            f"  {clean(charge['id'])} {clean(charge.get('status') or '')} {clean(amount)}"
            f" {' '.join(flags)}".rstrip()
        )
    say("anomalies: " + clean("; ".join(doc["anomalies"]) or "none"))
    unresolved = [c for c in doc["cases"] if c["status"] != "resolved"]
    say(f"open cases: {len(unresolved)}" + ("" if unresolved else " (none)"))
    for case in unresolved:
        say(
            f"  case {case['id']} [{clean(case['status'])}] {clean(case['severity'])} "
            f"{clean(case['key'])} {clean(format_money(case['at_stake_minor'], case['currency']))}"
        )
