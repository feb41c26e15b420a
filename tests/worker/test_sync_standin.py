"""What localstripe cannot show: disputes and prices (served by a local stand-in that passes
everything else through to localstripe) and a restricted key's missing permission."""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner

from tests.support import envelope, event_fixture
from tests.worker.stripe_standin import stripe_standin
from tests.worker.sync_account import Account, build_account, flush
from worker.cases import list_cases
from worker.cli import main
from worker.pipeline import process_event
from worker.store.db import make_engine
from worker.stripe_api import SubscriptionRefresher, stripe_client
from worker.sync.client import paced_client
from worker.sync.kinds import BY_NAME
from worker.sync.run import run_sync

API_KEY = "sk_test_billing_ops_standin"


@pytest.fixture
def account(localstripe_url) -> Account:
    flush(localstripe_url)
    return build_account(stripe_client(API_KEY, localstripe_url))


@pytest.fixture
def standin(localstripe_url):
    with stripe_standin(localstripe_url) as server:
        yield server


def dispute_on(charge_id: str) -> dict:
    """Stripe's published dispute shape (from the fixture), on a charge of the emulator."""
    dispute = dict(event_fixture("charge.dispute.created__subscription_canceled.json"))
    obj = dict(dispute["data"]["object"])
    obj.update(id="dp_standin_1", charge=charge_id, created=int(time.time()) - 86400)
    obj["evidence_details"] = {**obj["evidence_details"], "due_by": int(time.time()) + 7 * 86400}
    return obj


@pytest.fixture
def cli_env(tmp_path, database_url, redis_url, monkeypatch, standin):
    monkeypatch.setenv("BILLING_OPS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("BILLING_OPS_LOG_FORMAT", "json")
    monkeypatch.setenv("STRIPE_API_KEY", API_KEY)
    monkeypatch.setenv("STRIPE_API_BASE", standin.url)
    return database_url


def test_a_dispute_on_a_charge_never_seen_opens_a_case_for_its_customer(cli_env, standin, account):
    """`sync --only disputes`: the disputed charge is fetched once, so the dispute reaches the
    customer who paid it."""
    standin.objects["/v1/disputes"].append(dispute_on(account.healthy_charge))

    result = CliRunner().invoke(main, ["sync", "--only", "disputes"], catch_exceptions=False)

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("synced 1 objects (disputes=1)")
    cases = list_cases(make_engine(cli_env))
    assert [(c["kind"], c["customer"]["id"]) for c in cases] == [
        ("dispute", account.healthy_customer)
    ]


def test_a_kind_the_key_cannot_read_is_skipped_with_one_warning(cli_env, standin, account):
    """A restricted key without dispute access: one line names the permission, the rest of
    the account is synced and its cases opened."""
    standin.denied["/v1/disputes"] = "rak_dispute_read"

    result = CliRunner().invoke(main, ["sync"], catch_exceptions=False)

    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: disputes skipped: the key lacks rak_dispute_read"]
    (summary,) = result.stdout.splitlines()
    assert "customers=3" in summary and "prices=0" in summary and "skipped disputes" in summary
    kinds = {c["kind"] for c in list_cases(make_engine(cli_env))}
    assert {"duplicate_subscription", "failed_renewal"} <= kinds


def test_sync_needs_a_key(cli_env, monkeypatch):
    """Without STRIPE_API_KEY, sync says what to set and exits 1."""
    monkeypatch.delenv("STRIPE_API_KEY")

    result = CliRunner().invoke(main, ["sync"])

    assert result.exit_code == 1
    assert "STRIPE_API_KEY is not set" in result.stderr


def test_a_worker_fetches_the_unseen_charge_of_a_dispute_webhook(engine, localstripe_url, account):
    """With a key, a dispute webhook on a charge billing-ops never saw fetches that charge
    once, and the dispute case names the charge's customer."""
    webhook = envelope(
        "evt_dispute_unseen",
        "charge.dispute.created",
        dispute_on(account.healthy_charge),
        int(time.time()),
    )
    refresher = SubscriptionRefresher(api_key=API_KEY, api_base=localstripe_url)

    assert process_event(engine, webhook, refresher=refresher).status == "processed"

    (case,) = list_cases(engine)
    assert (case["kind"], case["customer"]["id"]) == ("dispute", account.healthy_customer)


def test_a_rate_limited_list_waits_and_continues(engine, standin):
    """Two 429s on the prices list (beyond the SDK's retries): the sync backs off, lists the
    prices and finishes."""
    standin.throttled["/v1/prices"] = 2
    standin.objects["/v1/prices"].append(
        {"id": "price_standin_1", "object": "price", "created": int(time.time()), "active": True}
    )
    client, http = paced_client(API_KEY, standin.url, rate=1000)

    summary = run_sync(
        engine, client, http, kinds=[BY_NAME["prices"]], since=int(time.time()) - 86400
    )

    assert summary.objects == {"prices": 1}
    assert standin.throttled["/v1/prices"] == 0
