"""End to end against an independent Stripe emulator: localstripe creates the objects and
posts its own signed webhooks to billing-ops over HTTP; the case appears in the store."""

from __future__ import annotations

import threading
import time
import urllib.parse
import urllib.request

import dramatiq
import pytest
from werkzeug.serving import make_server

from tests.serving import join_events
from tests.support import SECRET, subscribe_twice
from webhooks import create_app
from worker.actors import setup
from worker.cases import list_cases
from worker.store import events as event_log
from worker.stripe_api import stripe_client

API_KEY = "sk_test_billing_ops_e2e"


@pytest.fixture
def billing_ops_url(settings):
    """billing-ops on a real socket, with a real Dramatiq worker on the real Redis."""
    runtime = setup(settings)
    worker = dramatiq.Worker(runtime.broker, worker_threads=2, worker_timeout=100)
    worker.start()
    server = make_server("127.0.0.1", 0, create_app(settings, broker=runtime.broker), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", runtime
    server.shutdown()
    worker.stop()
    runtime.engine.dispose()


def point_webhooks_at(localstripe_url: str, url: str) -> None:
    """localstripe's own configuration endpoint: where to post, and the signing secret."""
    data = urllib.parse.urlencode({"url": url, "secret": SECRET}).encode()
    urllib.request.urlopen(f"{localstripe_url}/_config/webhooks/billing-ops", data=data, timeout=5)


def test_two_checkouts_in_localstripe_become_one_duplicate_case(localstripe_url, billing_ops_url):
    """A customer subscribed twice to one plan in the emulator ends as one accidental
    duplicate case, from the emulator's signed webhooks alone."""
    base_url, runtime = billing_ops_url
    point_webhooks_at(localstripe_url, f"{base_url}/webhooks/stripe")
    subscriptions = subscribe_twice(
        stripe_client(API_KEY, localstripe_url), "e2e@example.com", "Eve Two"
    )

    deadline = time.monotonic() + 30
    cases: list[dict] = []
    while time.monotonic() < deadline:
        join_events(runtime.broker, 10)
        cases = [c for c in list_cases(runtime.engine) if c["kind"] == "duplicate_subscription"]
        if cases:
            break
        time.sleep(0.3)
    assert len(cases) == 1, cases
    (case,) = cases
    assert case["classification"] == "accidental_duplicate"
    assert set(case["subjects"][:2]) == {s.id for s in subscriptions}
    assert case["customer"]["email_masked"] == "e***@example.com"
    processed = event_log.list_events(runtime.engine, event_log.PROCESSED)
    assert any(e.type == "customer.subscription.created" for e in processed)
