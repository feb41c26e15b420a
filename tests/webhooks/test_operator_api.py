"""The operator JSON API: closed without a token, bearer auth, cases and lookup."""

from __future__ import annotations

from tests.webhooks.conftest import OPERATOR_TOKEN
from webhooks import create_app

T0 = 1_764_000_000
TOKEN = OPERATOR_TOKEN


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_api_is_closed_when_no_token_is_configured(edge_settings):
    """Without OPERATOR_TOKEN every API call is refused with 403, even with a header."""
    client = create_app(edge_settings).test_client()
    response = client.get("/api/cases", headers=auth())
    assert response.status_code == 403
    assert response.get_json() == {"error": "operator_api_disabled"}


def test_missing_token_is_unauthorized(api):
    """No Authorization header → 401."""
    assert api.get("/api/cases").status_code == 401


def test_wrong_token_is_unauthorized(api):
    """A wrong bearer token → 401."""
    assert api.get("/api/cases", headers=auth("nope")).status_code == 401


def test_right_token_lists_cases_in_the_contract_shape(api):
    """The right token gets the cases, each with the contract's keys and a masked email."""
    response = api.get("/api/cases?status=open", headers=auth())
    assert response.status_code == 200
    (case,) = response.get_json()["cases"]
    for key in ("id", "status", "kind", "classification", "severity", "customer", "subjects",
                "opened_at", "updated_at", "evidence", "revenue_impact", "recommended_action",
                "handoff"):  # fmt: skip
        assert key in case
    assert case["customer"] == {
        "id": "cus_1",
        "name": "Jane Doe",
        "email_masked": "a***@example.com",
    }
    assert set(case["handoff"]) == {
        "customer", "billing_state", "decision", "action_taken", "follow_up", "product_gap"
    }  # fmt: skip
    assert "ann@example.com" not in response.get_data(as_text=True)


def test_case_detail_has_a_timeline_and_unknown_is_404(api):
    """A case by id carries its timeline; an unknown id is a 404."""
    case_id = api.get("/api/cases", headers=auth()).get_json()["cases"][0]["id"]
    detail = api.get(f"/api/cases/{case_id}", headers=auth()).get_json()
    assert [e["action"] for e in detail["timeline"]] == ["opened"]
    assert api.get("/api/cases/99999", headers=auth()).status_code == 404


def test_invalid_status_filter_is_a_400(api):
    """An unknown status is refused with the allowed values."""
    response = api.get("/api/cases?status=closed", headers=auth())
    assert response.status_code == 400
    assert response.get_json()["allowed"] == ["open", "acknowledged", "resolved"]


def test_lookup_by_subscription_id(api):
    """Lookup by sub_ id returns the person with both live subscriptions and the anomaly."""
    doc = api.get("/api/lookup?q=sub_2", headers=auth()).get_json()
    assert [c["id"] for c in doc["customers"]] == ["cus_1"]
    assert sorted(s["id"] for s in doc["subscriptions"]["active"]) == ["sub_1", "sub_2"]
    assert doc["anomalies"]


def test_lookup_without_query_is_a_400(api):
    """An empty query is refused."""
    assert api.get("/api/lookup?q=", headers=auth()).status_code == 400
