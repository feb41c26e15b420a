"""``billing-ops cases list`` filters like the API; ``cases export`` streams JSON Lines or CSV
with masked emails, integer minor units and spreadsheet-safe cells."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from tests.worker.case_stock import Person, duplicate_charge_events, opened_at, stock_cases
from worker.cli import main
from worker.pipeline import process_event
from worker.store.db import make_engine, upgrade_database

HOSTILE = Person("cus_evil", "eve@example.com", '=HYPERLINK("https://evil.example","x"), "hi"')


@pytest.fixture
def cli_store(tmp_path, redis_url, database_url, monkeypatch):
    """The CLI's environment over a stocked store (five cases, plus a hostile name)."""
    monkeypatch.setenv("BILLING_OPS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("BILLING_OPS_LOG_FORMAT", "json")
    (tmp_path / "data").mkdir()
    engine = make_engine(database_url)
    upgrade_database(engine, tmp_path / "data")
    stock_cases(engine)
    for body in duplicate_charge_events(HOSTILE, "evil", amount=4_200):
        process_event(engine, body, clock=lambda: opened_at(9))
    engine.dispose()


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_cases_list_filters_and_sorts_like_the_api(cli_store):
    """``--currency usd --sort -at_stake --json`` is the largest US-dollar cases first."""
    result = run("cases", "list", "--currency", "usd", "--sort", "-at_stake", "--json")
    assert result.exit_code == 0
    listed = json.loads(result.stdout)
    amounts = [c["revenue_impact"]["amount_minor"] for c in listed]
    assert amounts == [120_000, 5_000, 4_200, 2_900]


def test_cases_list_pages_and_says_how_to_continue(cli_store):
    """``--limit 2`` prints two rows and, on stderr, the total and the next cursor, which
    ``--cursor`` takes."""
    first = run("cases", "list", "--limit", "2", "--sort", "opened_at")
    assert "2 of 6 cases; next page: --cursor " in first.stderr
    cursor = first.stderr.split("--cursor ")[1].split()[0]
    second = run("cases", "list", "--limit", "2", "--sort", "opened_at", "--cursor", cursor)
    assert second.exit_code == 0
    assert "Cat Ng" not in first.stdout and "Cat Ng" in second.stdout


def test_cases_list_bad_option_names_it_and_exits_2(cli_store):
    """An unknown severity is a usage error naming ``--severity`` and the allowed values."""
    result = CliRunner().invoke(main, ["cases", "list", "--severity", "urgent"])
    assert result.exit_code == 2
    assert "--severity" in result.output and "critical" in result.output


def test_export_jsonl_is_one_record_per_case_in_minor_units(cli_store):
    """Every case once, oldest first, amounts as integers beside the currency, emails masked."""
    result = run("cases", "export", "--format", "jsonl")
    assert result.exit_code == 0
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 6
    assert [r["opened_at"] for r in records] == sorted(r["opened_at"] for r in records)
    jpy = next(r for r in records if r["currency"] == "jpy")
    assert (jpy["amount_minor"], jpy["at_stake_minor"]) == (700, 700)
    assert all(
        r["customer_email_masked"].startswith(r["customer_email_masked"][0] + "***@")
        for r in records
    )
    assert "ann@example.com" not in result.stdout
    assert "exported 6 cases" in result.stderr


def test_export_since_keeps_cases_opened_from_then(cli_store):
    """``--since`` is the opened-since filter: two of the six were opened from day 4."""
    result = run("cases", "export", "--format", "jsonl", "--since", opened_at(4).isoformat())
    customers = [json.loads(line)["customer_id"] for line in result.stdout.splitlines()]
    assert customers == ["cus_dan", "cus_evil"]


def test_export_csv_has_a_header_and_neutralises_formulas(cli_store):
    """The CSV parses back with its header; a name starting with ``=`` gets a leading ``'``
    and its quotes and commas survive as text."""
    result = run("cases", "export", "--format", "csv", "--customer", "cus_evil")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    (row,) = rows
    assert row["customer_name"] == "'" + HOSTILE.name
    assert row["amount_minor"] == "4200" and row["currency"] == "usd"
    assert row["customer_email_masked"] == "e***@example.com"


def test_export_csv_escapes_control_characters(cli_store, database_url):
    """A control character in a name is shown as an escape, never written raw."""
    person = Person("cus_ctl", "ctl@example.com", "@SUM(1)\x1b[2J\nrow")
    engine = make_engine(database_url)
    for body in duplicate_charge_events(person, "ctl", amount=100):
        process_event(engine, body, clock=lambda: opened_at(11))
    engine.dispose()
    result = run("cases", "export", "--format", "csv", "--customer", "cus_ctl")
    (row,) = list(csv.DictReader(io.StringIO(result.stdout)))
    assert row["customer_name"] == "'@SUM(1)\\x1b[2J\\x0arow"
    assert "\x1b" not in result.stdout
