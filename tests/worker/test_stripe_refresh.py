"""With STRIPE_API_KEY, the worker refreshes the person's subscriptions from the API
(here the independent emulator localstripe) before it evaluates."""

from __future__ import annotations

import json

import pytest
import stripe

from tests.support import free_port, subscribe_twice
from worker.cases import list_cases
from worker.pipeline import process_event
from worker.store import events as event_log
from worker.stripe_api import SubscriptionRefresher, stripe_client

API_KEY = "sk_test_billing_ops_localstripe"


@pytest.fixture
def two_subscriptions(localstripe_url):
    """One customer with two live subscriptions to the same plan, made through the API."""
    return subscribe_twice(stripe_client(API_KEY, localstripe_url), "jo@example.com", "Jo")


def webhook_for(subscription: stripe.StripeObject) -> str:
    """The customer.subscription.created webhook of one subscription (the other one's was lost)."""
    obj = subscription.to_dict()
    return json.dumps(
        {
            "id": f"evt_{obj['id']}",
            "object": "event",
            "type": "customer.subscription.created",
            "created": obj["created"],
            "livemode": False,
            "api_version": "2020-08-27",
            "data": {"object": obj},
        }
    )


def test_refresh_finds_a_duplicate_whose_webhook_never_came(
    engine, localstripe_url, two_subscriptions
):
    """Only the first subscription's webhook arrives; the API shows the second: a duplicate."""
    first, second = two_subscriptions
    refresher = SubscriptionRefresher(api_key=API_KEY, api_base=localstripe_url)
    assert process_event(engine, webhook_for(first), refresher=refresher).status == "processed"
    (case,) = list_cases(engine)
    assert case["kind"] == "duplicate_subscription"
    assert {first.id, second.id} <= set(case["subjects"])
    assert any(e.startswith("api_") for e in case["evidence"])


def test_without_a_key_events_alone_decide(engine, two_subscriptions):
    """Without the refresh, one subscription event is not a duplicate."""
    first, _second = two_subscriptions
    process_event(engine, webhook_for(first))
    assert list_cases(engine) == []


def test_an_unreachable_api_leaves_the_events_to_decide(engine, two_subscriptions):
    """Stripe down: the refresh is logged and skipped, and the event is still processed."""
    first, _second = two_subscriptions
    refresher = SubscriptionRefresher(api_key=API_KEY, api_base=f"http://127.0.0.1:{free_port()}")
    assert process_event(engine, webhook_for(first), refresher=refresher).status == "processed"
    assert [e.id for e in event_log.list_events(engine, event_log.PROCESSED)] == [f"evt_{first.id}"]
    assert list_cases(engine) == []
