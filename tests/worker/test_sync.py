"""``sync`` against the independent Stripe emulator localstripe: an account built through the
API before billing-ops was installed, no webhook ever received, then the sync."""

from __future__ import annotations

import json
import time

import pytest

from tests.support import envelope
from tests.worker.sync_account import Account, build_account, flush
from worker.cases import list_cases
from worker.pipeline import process_event
from worker.store.db import read_session
from worker.store.tables import ObjectRow
from worker.stripe_api import stripe_client
from worker.sync.client import paced_client
from worker.sync.kinds import BY_NAME
from worker.sync.run import SyncSummary, run_sync

API_KEY = "sk_test_billing_ops_sync"
NINETY_DAYS = 90 * 86400


@pytest.fixture
def account(localstripe_url) -> Account:
    flush(localstripe_url)
    return build_account(stripe_client(API_KEY, localstripe_url))


def sync(engine, api_base: str, **options) -> SyncSummary:
    client, http = paced_client(API_KEY, api_base, rate=1000)
    return run_sync(engine, client, http, since=int(time.time()) - NINETY_DAYS, **options)


def cases_by_customer(engine) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for case in list_cases(engine):
        found.setdefault(case["customer"]["id"], set()).add(case["kind"])
    return found


def stored(engine, object_type: str, object_id: str) -> dict:
    with read_session(engine) as session:
        row = session.get(ObjectRow, (object_type, object_id))
        assert row is not None
        return json.loads(row.data)


def test_sync_opens_the_cases_that_are_true_today(engine, localstripe_url, account):
    """A duplicate subscription and a past-due renewal become cases; the healthy customer
    gets none; every person touched is evaluated."""
    summary = sync(engine, localstripe_url)

    cases = cases_by_customer(engine)
    assert "duplicate_subscription" in cases[account.duplicate_customer]
    assert cases[account.duplicate_customer] <= {"duplicate_subscription", "duplicate_charge"}
    assert cases[account.past_due_customer] == {"failed_renewal"}
    assert account.healthy_customer not in cases
    (duplicate,) = [c for c in list_cases(engine) if c["kind"] == "duplicate_subscription"]
    assert set(account.duplicate_subscriptions) <= set(duplicate["subjects"])
    assert summary.people == 3
    assert summary.objects["customers"] == 3 and summary.objects["subscriptions"] == 4
    assert len(summary.opened) == len(list_cases(engine))


def test_a_second_sync_changes_nothing(engine, localstripe_url, account):
    """Run twice: the second run opens, updates and resolves nothing."""
    sync(engine, localstripe_url)
    before = list_cases(engine)

    again = sync(engine, localstripe_url)

    assert (again.opened, again.updated, again.resolved) == ([], [], [])
    assert list_cases(engine) == before


def test_an_interrupted_sync_continues_where_it_stopped(engine, localstripe_url, account):
    """Stopped after the first pages (Ctrl-C), the rerun lists only what was left and ends
    with the same cases as an uninterrupted sync."""
    listed: list[tuple[str, int]] = []

    def stop_at_subscriptions(kind: str, count: int) -> None:
        listed.append((kind, count))
        if kind == "subscriptions":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sync(engine, localstripe_url, page_size=2, progress=stop_at_subscriptions)
    assert list_cases(engine) == []  # nothing evaluated on half the state

    rest: list[tuple[str, int]] = []
    summary = sync(engine, localstripe_url, page_size=2, progress=lambda k, n: rest.append((k, n)))

    assert ("customers", 2) not in rest  # customers were not listed again
    assert rest[0] == ("subscriptions", 4)  # the page after the committed one
    assert summary.objects["customers"] == 3 and summary.objects["subscriptions"] == 4
    cases = cases_by_customer(engine)
    assert "duplicate_subscription" in cases[account.duplicate_customer]
    assert cases[account.past_due_customer] == {"failed_renewal"}


def test_a_late_webhook_older_than_the_synced_copy_leaves_it_in_place(
    engine, localstripe_url, account
):
    """A subscription webhook created before the sync, arriving after it, does not bring the
    past-due subscription back to active."""
    sync(engine, localstripe_url)
    synced = stored(engine, "subscription", account.past_due_subscription)
    client = stripe_client(API_KEY, localstripe_url)
    old = client.v1.subscriptions.retrieve(account.past_due_subscription).to_dict()
    old["status"] = "active"
    late = envelope(
        "evt_late_active", "customer.subscription.updated", old, int(time.time()) - 3600
    )

    assert process_event(engine, late).status == "processed"

    assert stored(engine, "subscription", account.past_due_subscription) == synced
    assert cases_by_customer(engine)[account.past_due_customer] == {"failed_renewal"}


def test_a_webhook_newer_than_the_synced_copy_replaces_it(engine, localstripe_url, account):
    """A subscription webhook created after the sync wins over the synced copy."""
    sync(engine, localstripe_url)
    client = stripe_client(API_KEY, localstripe_url)
    newer = client.v1.subscriptions.retrieve(account.past_due_subscription).to_dict()
    newer["status"] = "active"
    webhook = envelope(
        "evt_newer_active", "customer.subscription.updated", newer, int(time.time()) + 5
    )

    process_event(engine, webhook)

    assert stored(engine, "subscription", account.past_due_subscription)["data"]["status"] == (
        "active"
    )


def test_only_lists_the_kinds_named(engine, localstripe_url, account):
    """--only customers,subscriptions lists those two kinds and nothing else."""
    summary = sync(engine, localstripe_url, kinds=[BY_NAME["customers"], BY_NAME["subscriptions"]])

    assert set(summary.objects) == {"customers", "subscriptions"}
    with read_session(engine) as session:
        kinds = {row.object_type for row in session.query(ObjectRow)}
    assert kinds <= {"customer", "subscription"}
