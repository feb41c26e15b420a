"""The console's action form through the app factory: the plan changes nothing, the confirm
needs its CSRF token and must be the plan that was shown; the audit names the operator."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from rules.actions import ActionPlan, ActionType
from tests.console.test_console_security import signed_in
from worker.action_requests import carry_out
from worker.actions import ContractConfirmationRequiredError
from worker.cases import get_case, list_cases


def confirm_form(page: str) -> dict[str, str]:
    """The hidden fields of the plan page's confirm form, as the browser would post them."""
    form = page[page.index('id="confirm-form"') :]
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))


def test_planning_changes_nothing_and_confirming_records_the_operator(console_app):
    """GET the plan: no audit row. POST its confirm form: executed once, as ``admin``."""
    client = signed_in(console_app)
    engine = console_app.config["ENGINE"]
    page = client.get("/cases/1/plan?action=no_action").get_data(as_text=True)
    assert 'id="plan-summary"' in page and "no action" in page
    assert get_case(engine, 1)["actions"] == []
    response = client.post("/cases/1/actions", data=confirm_form(page))
    assert response.status_code == 302
    case = get_case(engine, 1)
    assert case["status"] == "resolved"
    assert [(a["actor"], a["action"], a["result"]) for a in case["actions"]] == [
        ("admin", "no_action", "succeeded")
    ]


def test_a_confirmation_without_its_csrf_token_is_refused(console_app):
    """The confirm form without its token is a 400 and nothing is executed."""
    client = signed_in(console_app)
    page = client.get("/cases/1/plan?action=no_action").get_data(as_text=True)
    fields = confirm_form(page)
    del fields["csrf_token"]
    assert client.post("/cases/1/actions", data=fields).status_code == 400
    assert get_case(console_app.config["ENGINE"], 1)["actions"] == []


def test_a_plan_other_than_the_one_shown_is_not_executed(console_app):
    """A confirmation naming another plan than the one planned now goes back to the plan."""
    client = signed_in(console_app)
    page = client.get("/cases/1/plan?action=no_action").get_data(as_text=True)
    fields = confirm_form(page) | {"confirmed_plan": "refund charge ch_AdaB (29.00 USD)"}
    response = client.post("/cases/1/actions", data=fields)
    assert response.status_code == 302 and "/cases/1/plan?" in response.headers["Location"]
    assert get_case(console_app.config["ENGINE"], 1)["actions"] == []


def test_a_refused_plan_shows_the_reason_and_no_confirm_button(console_app):
    """A refund on a team purchase is refused by the rules: the reason, nothing to confirm."""
    client = signed_in(console_app)
    engine = console_app.config["ENGINE"]
    team = next(c for c in list_cases(engine) if c["classification"] == "team_purchase")
    page = client.get(f"/cases/{team['id']}/plan?action=refund_charge").get_data(as_text=True)
    assert 'id="plan-refused"' in page and "no refund from a team_purchase case" in page
    assert 'id="confirm-form"' not in page


def test_bad_form_values_are_a_400(console_app):
    """An unknown action or a non-numeric amount is refused before any planning."""
    client = signed_in(console_app)
    assert client.get("/cases/1/plan?action=delete_everything").status_code == 400
    assert client.get("/cases/1/plan?action=refund_charge&amount_minor=12.5").status_code == 400
    assert client.get("/cases/99999/plan?action=no_action").status_code == 404


def test_a_contract_shape_is_never_executed_without_its_confirmation(console_app):
    """An annual plan with seats needs the operator's confirmation: without it, nothing runs."""
    plan = ActionPlan(
        type=ActionType.CANCEL_SUBSCRIPTION,
        target="sub_AdaB",
        customer_id="cus_AdaB",
        amount_minor=None,
        currency=None,
        at_period_end=False,
        reversible=False,
        contract_shape=("sub_AdaB bills yearly",),
        summary="cancel subscription sub_AdaB",
        undo=None,
    )
    with pytest.raises(ContractConfirmationRequiredError, match="bills yearly"):
        carry_out(
            console_app.config["ENGINE"],
            console_app.config["SETTINGS"],
            1,
            plan,
            actor="admin",
            contract_confirmed=False,
            now=datetime.now(UTC),
        )
    assert get_case(console_app.config["ENGINE"], 1)["actions"] == []
