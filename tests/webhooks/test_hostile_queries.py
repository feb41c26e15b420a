"""Hostile operator queries get a JSON 4xx, never a 500, on SQLite and PostgreSQL; an unknown
id is not "found"."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from tests.support import duplicate_subscription_story
from tests.webhooks.conftest import OPERATOR_TOKEN
from worker.cli import main
from worker.pipeline import process_event

AUTH = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


@pytest.mark.parametrize("case_id", [2**31, 2**63, 2**64 + 7])
def test_case_id_past_the_integer_column_is_not_found(api, case_id):
    """A case id no column can hold names no case: 404, not a database error."""
    response = api.get(f"/api/cases/{case_id}", headers=AUTH)
    assert response.status_code == 404
    assert response.get_json() == {"error": "case_not_found"}


@pytest.mark.parametrize("query", ["cus_%00", "ann%00@example.com", "sub_%00x", "%ED%A0%80"])
def test_lookup_of_a_string_the_store_cannot_hold_is_a_400(api, query):
    """A NUL (PostgreSQL refuses it in text) or an unencodable character → 400 invalid_query."""
    response = api.get(f"/api/lookup?q={query}", headers=AUTH)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_query"


def test_lookup_of_an_unknown_customer_id_is_not_found(api):
    """``cus_`` that billing-ops never saw → ``found: false``."""
    doc = api.get("/api/lookup?q=cus_never_seen", headers=AUTH).get_json()
    assert doc["found"] is False
    assert doc["customers"] == []


def test_lookup_of_a_known_customer_id_is_found(api):
    """The customer of the story is found by its id."""
    assert api.get("/api/lookup?q=cus_1", headers=AUTH).get_json()["found"] is True


def test_lookup_cli_exits_non_zero_when_nothing_matched(
    engine, database_url, tmp_path, monkeypatch
):
    """``billing-ops lookup cus_unknown`` says so and exits 1; a match exits 0."""
    for body in duplicate_subscription_story("ann@example.com"):
        process_event(engine, body)
    monkeypatch.setenv("BILLING_OPS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DATABASE_URL", database_url)
    (tmp_path / "data").mkdir(exist_ok=True)
    unknown = CliRunner().invoke(main, ["lookup", "cus_unknown"])
    assert unknown.exit_code == 1
    assert "nothing known" in unknown.output
    assert CliRunner().invoke(main, ["lookup", "cus_1"]).exit_code == 0


@pytest.mark.parametrize("command", [["cases", "show"], ["cases", "ack"]])
def test_cli_case_id_past_the_integer_column_is_not_found(
    engine, database_url, tmp_path, monkeypatch, command
):
    """``cases show 2**63`` says there is no such case, without a traceback."""
    monkeypatch.setenv("BILLING_OPS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DATABASE_URL", database_url)
    (tmp_path / "data").mkdir(exist_ok=True)
    result = CliRunner().invoke(main, [*command, str(2**63)])
    assert result.exit_code == 1
    assert "no case with id" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
