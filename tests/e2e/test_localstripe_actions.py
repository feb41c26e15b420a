"""Operators' actions proven against localstripe: the duplicate case from the emulator's own
webhooks is planned, then cancelled and refunded through the Stripe SDK, once."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from tests.e2e.test_localstripe_webhooks import (  # noqa: F401 - the fixture
    API_KEY,
    billing_ops_url,
    point_webhooks_at,
)
from tests.serving import join_events
from tests.support import subscribe_twice
from worker.cases import get_case, list_cases
from worker.cli import main
from worker.stripe_api import stripe_client


def act(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["act", *args])
    return result.exit_code, result.output


def wait_for(condition, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def act_env(billing_ops_url, localstripe_url, monkeypatch):  # noqa: F811
    """The CLI on billing-ops' store, with the Stripe SDK pointed at localstripe."""
    base_url, runtime = billing_ops_url
    settings = runtime.settings
    monkeypatch.setenv("BILLING_OPS_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    monkeypatch.setenv("STRIPE_API_KEY", API_KEY)
    monkeypatch.setenv("STRIPE_API_BASE", localstripe_url)
    point_webhooks_at(localstripe_url, f"{base_url}/webhooks/stripe")
    return runtime


def test_duplicate_is_planned_then_cancelled_and_refunded_once(act_env, localstripe_url):
    """Plan, then cancel and refund through Stripe; the same action again sends nothing."""
    runtime = act_env
    client = stripe_client(API_KEY, localstripe_url)
    subscriptions = subscribe_twice(client, "act@example.com", "Ada Act")

    def duplicate_case():  # type: ignore[no-untyped-def]
        join_events(runtime.broker, 10)
        found = [c for c in list_cases(runtime.engine) if c["kind"] == "duplicate_subscription"]
        return found[0] if found else None

    case = wait_for(duplicate_case, "the accidental-duplicate case")
    number = str(case["id"])
    # Both start in the same second: the rule's tie-break decides which is "newer".
    newer = next(s for s in subscriptions if s.id == case["recommended_action"]["target"])
    (older,) = [s for s in subscriptions if s is not newer]

    code, plan = act(number)
    assert code == 0, plan
    assert f"cancel subscription {newer.id}" in plan and "reversible:  NO" in plan
    assert "plan only" in plan
    assert client.v1.subscriptions.retrieve(newer.id).status == "active"

    code, done = act(number, "cancel_subscription", "--yes", "--by", "olga")
    assert code == 0, done
    assert client.v1.subscriptions.retrieve(newer.id).status == "canceled"
    assert client.v1.subscriptions.retrieve(older.id).status == "active"

    # localstripe's customer.subscription.deleted resolves the case; that cancellation was
    # billing-ops' own, so it opens no churn case, and the handoff shows the state it left.
    def resolved():  # type: ignore[no-untyped-def]
        join_events(runtime.broker, 10)
        return get_case(runtime.engine, case["id"])["status"] == "resolved"

    wait_for(resolved, "the duplicate case resolved by the cancellation's webhook")
    churn = [c for c in list_cases(runtime.engine) if c["kind"] == "churn_signal"]
    assert [c["subjects"] for c in churn if newer.id in c["subjects"]] == []
    handoff = get_case(runtime.engine, case["id"])["handoff"]
    assert f"{newer.id} canceled" in handoff["billing_state"]
    assert f"{older.id} active" in handoff["billing_state"]
    assert f"cancelled the extra subscription ({newer.id})" in handoff["follow_up"]
    assert "flagged" not in handoff["follow_up"]

    # localstripe sends no charge.* event: the charge is known from the API at planning time.
    invoice = client.v1.invoices.retrieve(newer.latest_invoice)
    latest = client.v1.payment_intents.retrieve(invoice.payment_intent).latest_charge
    charge_id = latest if isinstance(latest, str) else latest.id  # localstripe expands it
    code, refund_plan = act(number, "refund_charge", "--target", charge_id)
    assert code == 0, refund_plan
    assert f"refund charge {charge_id} (29.00 USD)" in refund_plan
    code, refunded = act(number, "refund_charge", "--target", charge_id, "--yes", "--by", "olga")
    assert code == 0, refunded
    code, again = act(number, "refund_charge", "--target", charge_id, "--yes", "--by", "olga")
    assert code == 0 and "already done, nothing sent" in again
    refunds = client.v1.refunds.list(params={"charge": charge_id}).data
    assert [(r.charge, r.amount) for r in refunds] == [(charge_id, 2900)]

    shown = CliRunner().invoke(main, ["cases", "show", number, "--json"]).output
    doc = json.loads(shown)
    assert [(a["actor"], a["action"], a["result"]) for a in doc["actions"]] == [
        ("olga", "cancel_subscription", "succeeded"),
        ("olga", "refund_charge", "succeeded"),
    ]
    assert f"canceled {newer.id} now" in doc["handoff"]["action_taken"]
    assert f"refunded 29.00 USD of {charge_id}" in doc["handoff"]["action_taken"]


def test_a_crash_between_the_refund_and_its_record_still_ends_with_one_refund(
    act_env, localstripe_url, monkeypatch
):
    """The process dies after Stripe refunded and before the audit says so; the next attempt
    finds the refund in Stripe (it carries the case id), records it as succeeded and sends
    nothing."""
    import worker.actions

    runtime = act_env
    client = stripe_client(API_KEY, localstripe_url)
    subscriptions = subscribe_twice(client, "crash@example.com", "Cy Crash")

    def duplicate_case():  # type: ignore[no-untyped-def]
        join_events(runtime.broker, 10)
        found = [c for c in list_cases(runtime.engine) if c["kind"] == "duplicate_subscription"]
        return found[0] if found else None

    case = wait_for(duplicate_case, "the accidental-duplicate case")
    newer = next(s for s in subscriptions if s.id == case["recommended_action"]["target"])
    invoice = client.v1.invoices.retrieve(newer.latest_invoice)
    latest = client.v1.payment_intents.retrieve(invoice.payment_intent).latest_charge
    charge_id = latest if isinstance(latest, str) else latest.id
    finish = worker.actions._finish

    def crash(engine, audit_id, result, request_id, detail):  # type: ignore[no-untyped-def]
        if result == worker.actions.SUCCEEDED:
            raise SystemExit("killed after the Stripe call")
        return finish(engine, audit_id, result, request_id, detail)

    monkeypatch.setattr(worker.actions, "_finish", crash)
    code, _ = act(str(case["id"]), "refund_charge", "--target", charge_id, "--yes")
    assert code != 0
    monkeypatch.setattr(worker.actions, "_finish", finish)
    pending = CliRunner().invoke(main, ["cases", "show", str(case["id"]), "--json"]).output
    assert [a["result"] for a in json.loads(pending)["actions"]] == ["pending"]
    code, retry = act(str(case["id"]), "refund_charge", "--target", charge_id, "--yes")
    assert code == 0, retry
    assert f"settled an interrupted attempt: refunded 29.00 USD of {charge_id}" in retry
    assert "already done, nothing sent" in retry
    assert len(client.v1.refunds.list(params={"charge": charge_id}).data) == 1
    doc = json.loads(CliRunner().invoke(main, ["cases", "show", str(case["id"]), "--json"]).output)
    assert [a["result"] for a in doc["actions"]] == ["succeeded"]
    assert f"refunded 29.00 USD of {charge_id}" in doc["handoff"]["action_taken"]
