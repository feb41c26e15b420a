"""POST /api/cases/<id>/actions: the plan without "confirm": true, execution with it."""

from __future__ import annotations

from tests.webhooks.test_operator_api import auth


def case_id_of(api) -> int:  # type: ignore[no-untyped-def]
    return api.get("/api/cases", headers=auth()).get_json()["cases"][0]["id"]


def test_action_without_confirm_is_only_a_plan(api):
    """Without confirm the answer is the plan (ids, reversibility, key) and nothing is audited."""
    case_id = case_id_of(api)
    response = api.post(
        f"/api/cases/{case_id}/actions", headers=auth(), json={"action": "cancel_subscription"}
    )
    assert response.status_code == 200, response.get_json()
    doc = response.get_json()
    assert doc["executed"] is False
    assert (doc["plan"]["target"], doc["plan"]["reversible"]) == ("sub_2", False)
    assert doc["plan"]["idempotency_key"] == f"billing-ops-case-{case_id}-cancel_subscription-sub_2"
    assert api.get(f"/api/cases/{case_id}", headers=auth()).get_json()["actions"] == []


def test_refused_and_invalid_actions(api):
    """A refused plan is a 409 with the reason; an unknown action a 400; unknown case 404."""
    case_id = case_id_of(api)
    refused = api.post(
        f"/api/cases/{case_id}/actions", headers=auth(), json={"action": "refund_charge"}
    )
    assert refused.status_code == 409 and refused.get_json()["error"] == "refused"
    assert (
        api.post(f"/api/cases/{case_id}/actions", headers=auth(), json={"action": "x"}).status_code
        == 400
    )
    assert (
        api.post(
            "/api/cases/99999/actions", headers=auth(), json={"action": "no_action"}
        ).status_code
        == 404
    )
    assert (
        api.post(f"/api/cases/{case_id}/actions", json={"action": "no_action"}).status_code == 401
    )


def test_confirmed_no_action_resolves_and_is_audited(api):
    """With confirm, no_action resolves the case and the audit names the operator."""
    case_id = case_id_of(api)
    response = api.post(
        f"/api/cases/{case_id}/actions",
        headers=auth(),
        json={"action": "no_action", "confirm": True},
    )
    assert response.status_code == 200 and response.get_json()["executed"] is True
    detail = api.get(f"/api/cases/{case_id}", headers=auth()).get_json()
    assert detail["status"] == "resolved"
    assert [(a["actor"], a["action"], a["result"]) for a in detail["actions"]] == [
        ("admin", "no_action", "succeeded")
    ]


def test_a_payment_link_channel_other_than_email_or_print_is_a_400(api):
    """send_payment_link takes "email" (the default) or "print"; anything else is refused."""
    case_id = case_id_of(api)
    bad = api.post(
        f"/api/cases/{case_id}/actions",
        headers=auth(),
        json={"action": "send_payment_link", "channel": "sms"},
    )
    assert (bad.status_code, bad.get_json()["error"]) == (400, "invalid_action_parameters")
    plan = api.post(
        f"/api/cases/{case_id}/actions",
        headers=auth(),
        json={"action": "send_payment_link", "channel": "print"},
    )
    assert plan.status_code == 200, plan.get_json()
    doc = plan.get_json()["plan"]
    assert (doc["channel"], doc["link"], doc["mode"]) == (
        "print",
        "billing_portal",
        "send_payment_link_print",
    )
