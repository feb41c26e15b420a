"""``backfill`` against localstripe's own /v1/events: oldest first through the webhook
pipeline, and one event id is one event whether it came as a webhook or from the list."""

from __future__ import annotations

import json
import time

import pytest

from tests.worker.sync_account import Account, build_account, flush
from worker.cases import list_cases
from worker.pipeline import process_event
from worker.store import events as event_log
from worker.stripe_api import stripe_client
from worker.sync.backfill import run_backfill
from worker.sync.client import paced_client

API_KEY = "sk_test_billing_ops_backfill"


@pytest.fixture
def account(localstripe_url) -> Account:
    flush(localstripe_url)
    return build_account(stripe_client(API_KEY, localstripe_url))


def backfill(engine, api_base: str):
    client, http = paced_client(API_KEY, api_base, rate=1000)
    return run_backfill(engine, client, http, since=int(time.time()) - 30 * 86400, page_size=5)


def test_backfill_skips_what_webhooks_already_brought(engine, localstripe_url, account):
    """An event received as a webhook is a duplicate in the backfill; the others are
    processed once, and a second backfill processes nothing."""
    client = stripe_client(API_KEY, localstripe_url)
    listed = [e.to_dict() for e in client.v1.events.list(params={"limit": 100}).data]
    webhook = next(e for e in listed if e["type"] == "customer.subscription.created")
    assert process_event(engine, json.dumps(webhook)).status == "processed"

    first = backfill(engine, localstripe_url)

    assert first.listed == len(listed)
    assert first.outcomes["duplicate"] == 1
    assert first.outcomes["processed"] == len(listed) - 1
    cases = list_cases(engine)
    assert any(c["kind"] == "duplicate_subscription" for c in cases)

    second = backfill(engine, localstripe_url)

    assert dict(second.outcomes) == {"duplicate": len(listed)}
    assert list_cases(engine) == cases
    stored = event_log.list_events(engine, event_log.PROCESSED, limit=1000)
    assert sorted(e.id for e in stored) == sorted(e["id"] for e in listed)
