"""With STRIPE_API_KEY, product names the events never carried are retrieved from the API
(here the independent emulator localstripe) and cached in the store for a while."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import stripe

from tests.support import free_port, subscribe_twice
from worker import projection
from worker.cases import list_cases
from worker.pipeline import process_event
from worker.store.db import read_session
from worker.stripe_api import ProductNames, stripe_client

API_KEY = "sk_test_billing_ops_localstripe"


@pytest.fixture
def client(localstripe_url):
    return stripe_client(API_KEY, localstripe_url)


@pytest.fixture
def two_subscriptions(client):
    """Two live subscriptions to one plan of the product "Pro", made through the API."""
    return subscribe_twice(client, "kim@example.com", "Kim")


def webhook(subscription: stripe.StripeObject, event_id: str, created: int | None = None) -> str:
    """A customer.subscription.created webhook (old API shape: plan.product is an id)."""
    obj = subscription.to_dict()
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": "customer.subscription.created",
            "created": created or obj["created"],
            "livemode": False,
            "api_version": "2020-08-27",
            "data": {"object": obj},
        }
    )


def product_id(subscription: stripe.StripeObject) -> str:
    return subscription.to_dict()["items"]["data"][0]["plan"]["product"]


def stored_name(engine, pid: str) -> str | None:
    with read_session(engine) as session:
        records = projection.load_products(session, [pid])
    return records[0].data.name if records else None  # type: ignore[union-attr]


def at(moment: datetime):
    return lambda: moment


def test_name_is_retrieved_cached_and_used_in_the_handoff(engine, client, localstripe_url,
                                                         two_subscriptions):  # fmt: skip
    """The first event fetches "Pro"; a rename is not fetched again within the TTL."""
    first, second = two_subscriptions
    names = ProductNames(api_key=API_KEY, api_base=localstripe_url)
    now = datetime.now(UTC)
    process_event(engine, webhook(first, "evt_a"), products=names, clock=at(now))
    pid = product_id(first)
    assert stored_name(engine, pid) == "Pro"
    client.v1.products.update(pid, params={"name": "Pro Max"})
    process_event(engine, webhook(second, "evt_b"), products=names, clock=at(now))
    assert stored_name(engine, pid) == "Pro"  # served from the store, no second retrieve
    (case,) = list_cases(engine)
    assert "1 × Pro 29.00 USD/month" in case["handoff"]["billing_state"]


def test_name_is_fetched_again_after_the_ttl(engine, client, localstripe_url, two_subscriptions):
    """Past ttl_seconds the fetched name is retrieved again and replaces the old one."""
    first, _second = two_subscriptions
    names = ProductNames(api_key=API_KEY, api_base=localstripe_url, ttl_seconds=60)
    now = datetime.now(UTC)
    process_event(engine, webhook(first, "evt_a"), products=names, clock=at(now))
    client.v1.products.update(product_id(first), params={"name": "Pro Max"})
    later = now + timedelta(seconds=61)
    process_event(engine, webhook(first, "evt_c", created=int(later.timestamp())),
                  products=names, clock=at(later))  # fmt: skip
    assert stored_name(engine, product_id(first)) == "Pro Max"


def test_unreachable_api_leaves_the_id(engine, two_subscriptions):
    """Stripe down: the fetch is logged and skipped; the event is processed, no name stored."""
    first, _second = two_subscriptions
    names = ProductNames(api_key=API_KEY, api_base=f"http://127.0.0.1:{free_port()}")
    assert process_event(engine, webhook(first, "evt_a"), products=names).status == "processed"
    assert stored_name(engine, product_id(first)) is None
