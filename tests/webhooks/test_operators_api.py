"""Operators on the JSON API: their own tokens read and act, and the audit names them."""

from __future__ import annotations

from datetime import UTC, datetime

from flask.testing import FlaskClient

from tests.webhooks.test_operator_api import auth
from webhooks import create_app
from worker.operators import add_operator, remove_operator
from worker.store.db import upgrade_database

NOW = datetime(2026, 11, 25, tzinfo=UTC)


def operator_token(api: FlaskClient, name: str) -> str:
    return add_operator(api.application.config["ENGINE"], name, is_admin=False, now=NOW)


def case_id_of(api: FlaskClient) -> int:
    return api.get("/api/cases", headers=auth()).get_json()["cases"][0]["id"]


def test_an_operator_token_reads_the_cases(api):
    """An operator's own token opens the API like OPERATOR_TOKEN does."""
    token = operator_token(api, "olga")
    response = api.get("/api/cases", headers=auth(token))
    assert response.status_code == 200 and response.get_json()["cases"]


def test_operators_alone_open_the_api_without_operator_token(edge_settings):
    """With no OPERATOR_TOKEN but an operator added, the API answers that operator (and 401s
    a stranger) instead of being closed."""
    app = create_app(edge_settings)
    engine = app.config["ENGINE"]
    upgrade_database(engine, edge_settings.data_dir)
    client = app.test_client()
    assert client.get("/api/cases", headers=auth("bo_x")).status_code == 403
    token = add_operator(engine, "olga", is_admin=False, now=NOW)
    assert client.get("/api/cases", headers=auth(token)).status_code == 200
    assert client.get("/api/cases", headers=auth("bo_x")).status_code == 401


def test_a_removed_operators_token_stops_working(api):
    """Removing an operator turns their token into a 401 at once."""
    token = operator_token(api, "olga")
    remove_operator(api.application.config["ENGINE"], "olga")
    assert api.get("/api/cases", headers=auth(token)).status_code == 401


def test_the_audit_names_the_authenticated_operator_not_the_body(api):
    """An action is recorded under the token's operator; an "operator" field in the body is
    not believed."""
    token = operator_token(api, "olga")
    case_id = case_id_of(api)
    response = api.post(
        f"/api/cases/{case_id}/actions",
        headers=auth(token),
        json={"action": "no_action", "confirm": True, "operator": "mallory"},
    )
    assert response.status_code == 200, response.get_json()
    detail = api.get(f"/api/cases/{case_id}", headers=auth()).get_json()
    assert [a["actor"] for a in detail["actions"]] == ["olga"]
    assert detail["status_by"] == "olga"


def test_operator_token_holder_acts_as_admin(api):
    """OPERATOR_TOKEN keeps working: its holder acts, recorded as "admin"."""
    case_id = case_id_of(api)
    api.post(f"/api/cases/{case_id}/ack", headers=auth(), json={"note": "looking"})
    timeline = api.get(f"/api/cases/{case_id}", headers=auth()).get_json()["timeline"]
    assert (timeline[-1]["actor"], timeline[-1]["action"]) == ("admin", "acknowledged")


def test_ack_with_a_note_lands_in_the_timeline_under_the_operator(api):
    """POST /ack acknowledges the case with the note, named after the operator."""
    token = operator_token(api, "olga")
    case_id = case_id_of(api)
    response = api.post(f"/api/cases/{case_id}/ack", headers=auth(token), json={"note": "on it"})
    assert response.status_code == 200, response.get_json()
    doc = response.get_json()
    assert (doc["status"], doc["status_by"], doc["status_note"]) == (
        "acknowledged",
        "olga",
        "on it",
    )
    last = doc["timeline"][-1]
    assert (last["actor"], last["action"], last["note"]) == ("olga", "acknowledged", "on it")


def test_resolve_needs_a_note(api):
    """POST /resolve without a note is a 400 and changes nothing; with one it resolves."""
    token = operator_token(api, "olga")
    case_id = case_id_of(api)
    refused = api.post(f"/api/cases/{case_id}/resolve", headers=auth(token), json={})
    assert (refused.status_code, refused.get_json()) == (400, {"error": "note_required"})
    assert api.get(f"/api/cases/{case_id}", headers=auth()).get_json()["status"] == "open"
    done = api.post(
        f"/api/cases/{case_id}/resolve", headers=auth(token), json={"note": "refunded by hand"}
    )
    assert done.status_code == 200
    assert (done.get_json()["status"], done.get_json()["status_by"]) == ("resolved", "olga")


def test_ack_and_resolve_refuse_strangers_and_unknown_cases(api):
    """No token is a 401; an unknown case a 404; a note that is not a string a 400."""
    case_id = case_id_of(api)
    assert api.post(f"/api/cases/{case_id}/ack", json={}).status_code == 401
    assert api.post("/api/cases/99999/ack", headers=auth(), json={}).status_code == 404
    bad = api.post(f"/api/cases/{case_id}/resolve", headers=auth(), json={"note": 5})
    assert bad.status_code == 400
