"""POST /api/cases/<id>/ack and /resolve share the CLI's one transition (worker.cases):
a repeat adds no timeline entry, and an ack never reopens a resolved case."""

from __future__ import annotations

from tests.webhooks.test_operator_api import auth


def _case_id(api) -> int:
    return api.get("/api/cases", headers=auth()).get_json()["cases"][0]["id"]


def _actions(api, case_id: int) -> list[str]:
    timeline = api.get(f"/api/cases/{case_id}", headers=auth()).get_json()["timeline"]
    return [entry["action"] for entry in timeline]


def test_a_repeated_ack_over_the_api_adds_no_timeline_entry(api):
    """Two POST /ack: both 200 with the acknowledged case, one "acknowledged" entry."""
    case_id = _case_id(api)
    before = _actions(api, case_id)
    for _ in range(2):
        response = api.post(f"/api/cases/{case_id}/ack", headers=auth(), json={"note": "on it"})
        assert response.status_code == 200
        assert response.get_json()["status"] == "acknowledged"
    assert _actions(api, case_id) == [*before, "acknowledged"]


def test_a_repeated_resolve_over_the_api_adds_no_timeline_entry(api):
    """Two POST /resolve: one "resolved" entry, and the first note stands."""
    case_id = _case_id(api)
    before = _actions(api, case_id)
    for note in ("refunded", "refunded again?"):
        response = api.post(f"/api/cases/{case_id}/resolve", headers=auth(), json={"note": note})
        assert response.status_code == 200
    assert _actions(api, case_id) == [*before, "resolved"]
    assert api.get(f"/api/cases/{case_id}", headers=auth()).get_json()["status_note"] == "refunded"


def test_acking_a_resolved_case_over_the_api_is_a_409_and_changes_nothing(api):
    """POST /ack of a resolved case: 409 invalid_transition saying why; still resolved."""
    case_id = _case_id(api)
    api.post(f"/api/cases/{case_id}/resolve", headers=auth(), json={"note": "refunded"})
    before = _actions(api, case_id)
    response = api.post(f"/api/cases/{case_id}/ack", headers=auth(), json={})
    assert response.status_code == 409
    body = response.get_json()
    assert body["error"] == "invalid_transition" and "would reopen it" in body["detail"]
    assert api.get(f"/api/cases/{case_id}", headers=auth()).get_json()["status"] == "resolved"
    assert _actions(api, case_id) == before
