"""The billing-ops command line, run as a user would (environment in, text out)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from tests.support import duplicate_subscription_story
from worker.cli import main
from worker.store import events as event_log
from worker.store.db import make_engine

T0 = 1_764_000_000


@pytest.fixture
def cli_env(tmp_path, redis_url, database_url, monkeypatch):
    monkeypatch.setenv("BILLING_OPS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("BILLING_OPS_LOG_FORMAT", "json")
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET", raising=False)
    return database_url


def run(*args: str):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result


def events_of(tmp_path) -> list[str]:
    return duplicate_subscription_story()


def test_secret_prints_the_generated_secret_and_keeps_it(cli_env):
    """`secret` prints a whsec_ secret, the same one every time."""
    first = run("secret").output.strip()
    assert first.startswith("whsec_")
    assert run("secret").output.strip() == first


def test_replay_accepts_object_array_and_json_lines(cli_env, tmp_path):
    """One object, an array and JSON Lines all feed the same pipeline."""
    one, two, three = events_of(tmp_path)
    (tmp_path / "one.json").write_text(one)
    (tmp_path / "array.json").write_text(f"[{two}]")
    (tmp_path / "lines.jsonl").write_text(three + "\n" + three + "\n")
    result = run(
        "replay",
        str(tmp_path / "one.json"),
        str(tmp_path / "array.json"),
        str(tmp_path / "lines.jsonl"),
    )
    assert result.exit_code == 0
    assert "replayed 4 events: 1 duplicate, 3 processed" in result.output
    listed = json.loads(run("cases", "list", "--json").output)
    assert [c["kind"] for c in listed] == ["duplicate_subscription"]


def test_replay_refuses_a_file_that_is_not_events(cli_env, tmp_path):
    """A JSON file that is not Stripe events is a clear error, and nothing is processed."""
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": "world"}')
    result = CliRunner().invoke(main, ["replay", str(bad)])
    assert result.exit_code != 0
    assert "not a Stripe event object" in result.output


def test_failed_events_are_listed_and_retried(cli_env, tmp_path):
    """An event that failed every retry shows in `events failed` and `events retry` requeues it."""
    engine = make_engine(cli_env)
    run("db", "upgrade")
    body = events_of(tmp_path)[0]
    now = datetime.now(UTC)
    event_log.record_received(
        engine,
        event_id="evt_1",
        event_type="customer.created",
        created=T0,
        livemode=False,
        api_version=None,
        payload=body,
        now=now,
    )
    event_log.record_failure(engine, "evt_1", "OperationalError: boom", final=True, now=now)
    listed = run("events", "failed")
    assert "evt_1" in listed.output and "OperationalError: boom" in listed.output
    retried = run("events", "retry", "evt_1", "evt_unknown")
    assert "requeued 1 events" in retried.output
    assert event_log.list_events(engine, event_log.FAILED) == []
    assert [e.id for e in event_log.list_events(engine, event_log.RECEIVED)] == ["evt_1"]


def test_cases_list_show_ack_resolve(cli_env, tmp_path):
    """An operator lists, reads, acknowledges and resolves a case from the CLI."""
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(events_of(tmp_path)))
    run("replay", str(path))
    table = run("cases", "list").output
    assert "duplicate_subscription" in table and "accidental_duplicate" in table
    assert "a***@example.com" in table and "a@example.com" not in table
    case_id = json.loads(run("cases", "list", "--json").output)[0]["id"]
    shown = run("cases", "show", str(case_id)).output
    for title in (
        "CUSTOMER",
        "BILLING STATE",
        "DECISION",
        "ACTION TAKEN",
        "FOLLOW-UP",
        "PRODUCT GAP",
    ):
        assert title in shown
    assert "sub_2" in shown
    assert "is acknowledged" in run("cases", "ack", str(case_id), "--by", "sam").output
    assert (
        "is resolved" in run("cases", "resolve", str(case_id), "--note", "cancelled sub_2").output
    )
    doc = json.loads(run("cases", "show", str(case_id), "--json").output)
    assert [e["action"] for e in doc["timeline"]] == ["opened", "acknowledged", "resolved"]
    assert doc["status_note"] == "cancelled sub_2"


def test_show_unknown_case_is_a_clear_error(cli_env):
    """Asking for a case that does not exist says so."""
    run("db", "upgrade")
    result = CliRunner().invoke(main, ["cases", "show", "999"])
    assert result.exit_code != 0
    assert "no case with id 999" in result.output


def test_lookup_by_email_id_and_subscription(cli_env, tmp_path):
    """Lookup by email shows it in full; by id it stays masked; both list the anomaly."""
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(events_of(tmp_path)))
    run("replay", str(path))
    by_email = json.loads(run("lookup", "a@example.com", "--json").output)
    assert by_email["customers"][0]["email"] == "a@example.com"
    assert len(by_email["subscriptions"]["active"]) == 2
    assert by_email["anomalies"]
    by_sub = json.loads(run("lookup", "sub_2", "--json").output)
    assert by_sub["customers"][0]["email"] == "a***@example.com"
    assert [c["kind"] for c in by_sub["cases"]] == ["duplicate_subscription"]


def test_lookup_rejects_an_unsupported_query(cli_env):
    """A query that is neither an email nor a supported id is refused with guidance."""
    run("db", "upgrade")
    result = CliRunner().invoke(main, ["lookup", "prod_123"])
    assert result.exit_code != 0
    assert "give an email or a cus_, sub_, in_, ch_, pi_ or dp_ id" in result.output


def test_replay_uses_rule_thresholds_from_the_environment(cli_env, monkeypatch):
    """With the duplicate-charge window narrowed below the gap, the two charges are not a case."""
    from tests.support import FIXTURES

    monkeypatch.setenv("BILLING_OPS_RULE_DUPLICATE_CHARGE_WINDOW_SECONDS", "10")
    run("replay", str(FIXTURES / "scenarios" / "duplicate_charge"))
    kinds = [c["kind"] for c in json.loads(run("cases", "list", "--json").output)]
    assert "duplicate_charge" not in kinds


def test_replay_finds_the_duplicate_charge_with_default_thresholds(cli_env):
    """The same scenario with the default 600 s window opens the duplicate-charge case."""
    from tests.support import FIXTURES

    run("replay", str(FIXTURES / "scenarios" / "duplicate_charge"))
    kinds = [c["kind"] for c in json.loads(run("cases", "list", "--json").output)]
    assert "duplicate_charge" in kinds
