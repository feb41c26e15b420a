"""The whole path on real services: signed webhook → Redis → Dramatiq worker → store → case."""

from __future__ import annotations

import dramatiq
import pytest

from tests.serving import join_events
from tests.support import envelope, sign, subscription
from webhooks import create_app
from worker.actors import setup
from worker.cases import list_cases
from worker.store import events as event_log

T0 = 1_764_000_000


@pytest.fixture
def runtime(settings):
    rt = setup(settings)
    worker = dramatiq.Worker(rt.broker, worker_threads=2, worker_timeout=100)
    worker.start()
    yield rt
    worker.stop()
    rt.engine.dispose()


def deliver(client, body: str) -> int:
    return client.post(
        "/webhooks/stripe", data=body, headers={"Stripe-Signature": sign(body)}
    ).status_code


def test_signed_webhooks_become_a_case(settings, runtime):
    """Two signed subscription events delivered over HTTP end as one duplicate case."""
    client = create_app(settings, broker=runtime.broker).test_client()
    first = envelope(
        "evt_fp_1", "customer.subscription.created", subscription("sub_a", "cus_fp", created=T0), T0
    )
    second = envelope(
        "evt_fp_2",
        "customer.subscription.created",
        subscription("sub_b", "cus_fp", created=T0 + 30),
        T0 + 30,
    )
    assert deliver(client, first) == 200
    assert deliver(client, second) == 200
    assert deliver(client, second) == 200  # Stripe retried: still one effect
    join_events(runtime.broker, 20)
    processed = event_log.list_events(runtime.engine, event_log.PROCESSED)
    assert sorted(e.id for e in processed) == ["evt_fp_1", "evt_fp_2"]
    cases = list_cases(runtime.engine)
    assert [(c["kind"], c["subjects"][0]) for c in cases] == [("duplicate_subscription", "sub_b")]
