"""The operator digest: open cases by kind, money at stake summed per currency."""

from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner

from tests.notifications.builders import duplicate_charge_events, failed_renewal_events
from tests.notifications.harness import NOW, SLACK_PATH, run
from worker.cli import main
from worker.errors import ConfigurationError
from worker.notifications.digest import build_digest, parse_duration, render_text


def test_digest_sums_money_at_stake_per_kind(engine):
    """Each kind shows its open count and the amount plus MRR at risk, formatted per currency."""
    run(engine, failed_renewal_events(), None)
    digest = build_digest(engine, since=NOW - timedelta(hours=24), now=NOW)
    [renewal] = digest.kinds
    assert (renewal.kind, renewal.open, renewal.new) == ("failed_renewal", 1, 1)
    assert renewal.at_stake == (("usd", 2900),) and renewal.mrr_at_risk == (("usd", 2900),)
    text = render_text(digest)
    assert "failed_renewal" in text and "29.00 USD" in text
    assert "open cases: 1 (1 new since" in text


def test_duration_accepts_hours_and_days_and_names_a_bad_one():
    """`24h` and `7d` parse; anything else is refused with the value in the message."""
    assert parse_duration("24h") == timedelta(hours=24)
    assert parse_duration("7d") == timedelta(days=7)
    with pytest.raises(ConfigurationError, match="soon"):
        parse_duration("soon")


@pytest.fixture
def cli_env(tmp_path, database_url, monkeypatch):
    monkeypatch.setenv("BILLING_OPS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("BILLING_OPS_LOG_FORMAT", "json")
    for name in ("SLACK_WEBHOOK_URL", "SMTP_URL", "EMAIL_FROM", "SLACK_BOT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_digest_command_prints_to_stdout_by_default(cli_env, engine):
    """`billing-ops digest` prints the table of open cases."""
    run(engine, duplicate_charge_events(), None)
    result = CliRunner().invoke(main, ["digest", "--since", "7d"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "duplicate_charge" in result.output and "29.00 USD" in result.output


def test_digest_command_posts_to_slack(cli_env, engine, slack):
    """`digest --to slack` posts the same table as a code block."""
    cli_env.setenv("SLACK_WEBHOOK_URL", slack.url_for(SLACK_PATH))
    run(engine, duplicate_charge_events(), None)
    result = CliRunner().invoke(main, ["digest", "--to", "slack"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    [(request, _)] = slack.log
    assert "duplicate_charge" in request.get_json()["blocks"][0]["text"]["text"]
