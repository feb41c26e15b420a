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
    assert result.stdout.startswith("replayed 4 events (1 duplicate, 3 processed); cases: 1 opened")
    listed = json.loads(run("cases", "list", "--json").output)
    assert [c["kind"] for c in listed] == ["duplicate_subscription"]


def test_replay_of_files_without_events_is_an_error(cli_env, tmp_path):
    """Only JSON that is not Stripe events: nothing to replay is an error, naming the path."""
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": "world"}')
    result = CliRunner().invoke(main, ["replay", str(bad)])
    assert result.exit_code == 1
    assert f"Error: no Stripe events in {bad}" in result.stderr


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
    assert "requeued 1 events" in retried.stdout
    assert retried.exit_code == 1  # not everything named was retried
    assert "left alone: evt_unknown" in retried.stderr
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


def _replayed_case(tmp_path) -> int:
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(events_of(tmp_path)))
    run("replay", str(path))
    return json.loads(run("cases", "list", "--json").output)[0]["id"]


def _timeline(case_id: int) -> list[str]:
    doc = json.loads(run("cases", "show", str(case_id), "--json").output)
    return [entry["action"] for entry in doc["timeline"]]


def test_acknowledging_a_resolved_case_is_refused(cli_env, tmp_path):
    """`cases ack` of a resolved case does not reopen it: one clear line, exit 1, no change."""
    case_id = _replayed_case(tmp_path)
    run("cases", "resolve", str(case_id), "--note", "refunded")
    result = CliRunner().invoke(main, ["cases", "ack", str(case_id)])
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: case {case_id} is resolved; acknowledging it would reopen it (billing-ops "
        "reopens a resolved case itself when its problem grows)\n"
    )
    doc = json.loads(run("cases", "show", str(case_id), "--json").output)
    assert doc["status"] == "resolved" and doc["status_note"] == "refunded"
    assert _timeline(case_id) == ["opened", "resolved"]


@pytest.mark.parametrize("command", [["ack"], ["resolve", "--note", "done"]])
def test_a_repeated_ack_or_resolve_adds_no_timeline_entry(cli_env, tmp_path, command):
    """The second `cases ack` (or `resolve`) says nothing changed and writes no entry."""
    case_id = _replayed_case(tmp_path)
    verb, *rest = command
    first = run("cases", verb, str(case_id), *rest)
    again = run("cases", verb, str(case_id), *rest)
    status = "acknowledged" if verb == "ack" else "resolved"
    assert first.stdout == f"case {case_id} is {status}\n"
    assert again.exit_code == 0
    assert again.stdout == f"case {case_id} is already {status}; nothing changed\n"
    assert _timeline(case_id) == ["opened", status]


def test_retrying_only_unknown_events_is_an_error_and_needs_no_redis(cli_env, monkeypatch):
    """`events retry` of an id that is not a failed event: exit 1, named; Redis is not even
    asked (nothing to put on it)."""
    run("db", "upgrade")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    result = CliRunner().invoke(main, ["events", "retry", "evt_never_seen"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "Error: not failed or unknown, left alone: evt_never_seen (see billing-ops events failed)\n"
    )


def test_cases_list_of_an_unknown_kind_is_a_usage_error(cli_env):
    """`cases list --kind nope` names the kinds instead of answering an empty list."""
    run("db", "upgrade")
    result = CliRunner().invoke(main, ["cases", "list", "--kind", "nope"])
    assert result.exit_code == 2
    assert "Error: Invalid value for --kind: 'nope'" in result.stderr
    assert "churn_signal, dispute, duplicate_charge" in result.stderr


def test_outbox_list_has_headers_and_one_row_per_notification(cli_env, tmp_path):
    """`outbox list` prints a header line, then a row per notification with its case,
    channel, reason, status and attempts; `--help` says what it lists."""
    from tests.notifications.builders import duplicate_charge_events
    from worker.notifications.planning import NotifyPolicy
    from worker.pipeline import process_event
    from worker.settings import load_settings

    engine = make_engine(cli_env)
    run("db", "upgrade")
    policy = NotifyPolicy.from_settings(load_settings({"BILLING_OPS_DATA_DIR": str(tmp_path)}))
    for body in duplicate_charge_events():
        process_event(engine, body, notify=policy)
    lines = run("outbox", "list").stdout.splitlines()
    assert lines[0].split() == [
        "ID",
        "CASE",
        "CHANNEL",
        "REASON",
        "STATUS",
        "ATTEMPTS",
        "LAST",
        "ERROR",
    ]
    rows = [line.split() for line in lines[1:]]
    assert len(rows) == 1
    case_id = json.loads(run("cases", "list", "--json").output)[0]["id"]
    assert rows[0][1:3] == [str(case_id), "slack"] and rows[0][4:6] == ["skipped", "0"]
    assert "Notifications (Slack alerts, recovery emails)" in run("outbox", "list", "-h").stdout


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


def test_lookup_shows_the_persons_open_cases_and_charges(cli_env):
    """`lookup` lists the person's recent charges (amount, refund, dispute) and the cases still
    open, with severity; a resolved case moves out of the open ones."""
    from tests.support import FIXTURES

    scenario = FIXTURES / "scenarios" / "accidental_duplicate_subscription"
    charge = json.loads((scenario / "03_charge.succeeded.json").read_text())["data"]["object"]
    run("replay", str(scenario))
    (case,) = json.loads(run("cases", "list", "--json").output)
    text = run("lookup", charge["customer"]).stdout
    amount = f"{charge['amount'] / 100:.2f} {charge['currency'].upper()}"
    assert f"  {charge['id']} succeeded {amount}" in text.split("recent charges:")[1]
    opened = f"open cases: 1\n  case {case['id']} [open] {case['severity']} {case['key']} "
    assert opened in text
    run("cases", "resolve", str(case["id"]), "--note", "refunded")
    after = run("lookup", charge["customer"]).stdout
    assert "open cases: 0 (none)" in after
