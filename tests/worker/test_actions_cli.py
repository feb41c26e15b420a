"""``billing-ops act`` without a reachable Stripe: plans, refusals, errors and no-action."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from tests.support import duplicate_subscription_story, free_port
from worker.cli import main


@pytest.fixture
def case_id(tmp_path, redis_url, database_url, monkeypatch) -> str:
    """The accidental-duplicate case of sub_1/sub_2, replayed into a fresh store."""
    monkeypatch.setenv("BILLING_OPS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("BILLING_OPS_LOG_FORMAT", "json")
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(duplicate_subscription_story()))
    assert run("replay", str(path)).exit_code == 0
    return str(json.loads(run("cases", "list", "--json").output)[0]["id"])


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args))


def test_plan_names_the_newer_subscription_and_changes_nothing(case_id):
    """Without --yes the plan is shown and nothing is recorded."""
    result = run("act", case_id, "cancel_subscription", "--at-period-end")
    assert result.exit_code == 0, result.output
    assert "cancel subscription at period end sub_2" in result.output
    assert "undo:        until the period ends, 'remove_scheduled_cancel sub_2'" in result.output
    doc = json.loads(run("cases", "show", case_id, "--json").output)
    assert doc["actions"] == [] and [e["action"] for e in doc["timeline"]] == ["opened"]


def test_refused_action_is_one_line_and_exit_1(case_id):
    """A refund the case names no charge for is refused in one line."""
    result = run("act", case_id, "refund_charge", "--yes")
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0 and "refused:" in result.output


def test_stripe_error_is_one_line_leaves_the_case_and_is_audited(case_id, monkeypatch):
    """Stripe unreachable: one line, exit 1, the case as it was, a failed audit row."""
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_unreachable")
    monkeypatch.setenv("STRIPE_API_BASE", f"http://127.0.0.1:{free_port()}")
    before = json.loads(run("cases", "show", case_id, "--json").output)
    result = run("act", case_id, "cancel_subscription", "--yes", "--by", "olga")
    assert result.exit_code == 1
    assert result.output.splitlines()[-1].startswith("Error: Stripe refused cancel subscription")
    after = json.loads(run("cases", "show", case_id, "--json").output)
    assert (after["status"], after["timeline"], after["handoff"]) == (
        before["status"],
        before["timeline"],
        before["handoff"],
    )
    assert [(a["actor"], a["result"]) for a in after["actions"]] == [("olga", "failed")]


def test_resolve_with_no_action_is_audited_and_resolves(case_id):
    """no_action resolves the case, names the operator, and ACTION TAKEN says so."""
    result = run("act", case_id, "no_action", "--yes", "--by", "olga")
    assert result.exit_code == 0, result.output
    doc = json.loads(run("cases", "show", case_id, "--json").output)
    assert (doc["status"], doc["status_by"]) == ("resolved", "olga")
    assert doc["handoff"]["action_taken"].startswith("resolved with no action in Stripe — by olga")
    assert "ACTION TAKEN    resolved with no action" in run("cases", "show", case_id).output


def test_annual_contract_needs_its_own_confirmation(tmp_path, redis_url, database_url, monkeypatch):
    """An annual duplicate shows its contract shape and is not executed without
    --confirm-contract (nothing audited, nothing sent)."""
    monkeypatch.setenv("BILLING_OPS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_never_called")
    monkeypatch.setenv("STRIPE_API_BASE", f"http://127.0.0.1:{free_port()}")
    story = duplicate_subscription_story()
    story[-1] = story[-1].replace('"interval": "month"', '"interval": "year"')
    assert '"interval": "year"' in story[-1]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(story))
    assert run("replay", str(path)).exit_code == 0
    case_id = str(json.loads(run("cases", "list", "--json").output)[0]["id"])
    result = run("act", case_id, "cancel_subscription", "--target", "sub_2", "--yes")
    assert result.exit_code == 1, result.output
    assert "contract:    sub_2 bills yearly" in result.output
    assert "needs --confirm-contract" in result.output
    assert json.loads(run("cases", "show", case_id, "--json").output)["actions"] == []


def test_execute_itself_refuses_an_unconfirmed_contract(
    tmp_path, redis_url, database_url, monkeypatch
):
    """The execute path, not only the CLI, refuses an annual plan without its confirmation:
    nothing is audited and Stripe is never asked."""
    from rules.actions import ActionPlan, ActionRequest, ActionType
    from worker.actions import ContractConfirmationRequiredError, execute, plan_for_case
    from worker.settings import load_settings
    from worker.store.db import make_engine

    monkeypatch.setenv("BILLING_OPS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    story = duplicate_subscription_story()
    story[-1] = story[-1].replace('"interval": "month"', '"interval": "year"')
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(story))
    assert run("replay", str(path)).exit_code == 0
    case_id = json.loads(run("cases", "list", "--json").output)[0]["id"]
    engine = make_engine(database_url)
    now = datetime.now(UTC)
    request = ActionRequest(ActionType.CANCEL_SUBSCRIPTION, "sub_2")
    plan = plan_for_case(engine, case_id, request, now, load_settings().rules)
    assert isinstance(plan, ActionPlan) and plan.needs_contract_confirmation
    with pytest.raises(ContractConfirmationRequiredError, match="sub_2 bills yearly"):
        execute(engine, None, case_id, plan, actor="olga", now=now)
    assert json.loads(run("cases", "show", str(case_id), "--json").output)["actions"] == []


def test_an_interrupted_no_action_is_settled_then_taken(case_id, database_url):
    """A pending audit row (the process died before the case changed) is settled as failed on
    the next attempt, which then resolves the case once."""
    from worker.store.db import make_engine, write_session
    from worker.store.tables import ActionAuditRow

    with write_session(make_engine(database_url)) as session:
        session.add(
            ActionAuditRow(
                case_id=int(case_id),
                at=datetime.now(UTC),
                actor="olga",
                action="no_action",
                target=None,
                idempotency_key=f"billing-ops-case-{case_id}-no_action-case",
                result="pending",
            )
        )
    result = run("act", case_id, "no_action", "--yes", "--by", "olga")
    assert result.exit_code == 0, result.output
    assert "settled an interrupted attempt: interrupted before the case was resolved" in (
        result.output
    )
    doc = json.loads(run("cases", "show", case_id, "--json").output)
    assert [a["result"] for a in doc["actions"]] == ["failed", "succeeded"]
    assert doc["status"] == "resolved"
