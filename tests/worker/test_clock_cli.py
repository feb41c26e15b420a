"""``billing-ops clock run`` and replay's closing clock run, as an operator runs them."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tests.worker.clock_stories import (
    CARD_EXPIRES,
    DAY,
    TRIAL_END,
    at,
    paying_with_card,
    trial_without_card,
)
from tests.worker.test_cli import cli_env  # noqa: F401 - the same CLI environment fixture
from tests.worker.test_cli import run as cli_run
from worker.cli import main

pytestmark = pytest.mark.usefixtures("cli_env")


def run(*args: str):
    result = cli_run(*args)
    assert result.exit_code == 0, result.output
    return result


def churn_keys() -> list[str]:
    cases = json.loads(run("cases", "list", "--json").output)
    return sorted(c["key"] for c in cases if c["kind"] == "churn_signal" and c["status"] == "open")


def test_replay_then_clock_run_opens_the_trial_case(tmp_path):
    """Replayed at an instant before the window, nothing; `clock run --now` at Stripe's notice
    time opens the trial-ending case."""
    story = tmp_path / "trial.jsonl"
    story.write_text("\n".join(trial_without_card()))
    run("replay", str(story), "--now", at(TRIAL_END - 10 * DAY).isoformat())
    assert churn_keys() == []
    result = run("clock", "run", "--now", at(TRIAL_END - 3 * DAY).isoformat())
    assert "evaluated 1 people; cases opened 1" in result.output
    assert churn_keys() == ["churn_signal:sub_T"]


def test_replay_ends_with_a_clock_run_at_the_instant_given(tmp_path):
    """Replaying old events at a later --now gives what live operation shows by then: the
    card that expired since is a case, though no event said so."""
    story = tmp_path / "card.jsonl"
    story.write_text("\n".join(paying_with_card()))
    result = run("replay", str(story), "--now", at(CARD_EXPIRES - 5 * DAY).isoformat())
    assert "clock evaluated 1 people" in result.output
    assert churn_keys() == ["churn_signal:sub_cus_C"]


def test_clock_run_refuses_an_instant_it_cannot_read():
    """A --now that is not ISO 8601 is a clear usage error."""
    result = CliRunner().invoke(main, ["clock", "run", "--now", "next tuesday"])
    assert result.exit_code != 0
    assert "is not an ISO 8601 instant" in result.output


def test_clock_run_refuses_an_instant_in_the_future():
    """A future --now would stamp people as evaluated ahead of real time: refused."""
    result = CliRunner().invoke(main, ["clock", "run", "--now", "2999-01-01T00:00:00Z"])
    assert result.exit_code != 0
    assert "is in the future" in result.output
