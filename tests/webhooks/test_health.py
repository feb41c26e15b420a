"""Liveness, readiness and metrics."""

from __future__ import annotations

import time
from dataclasses import replace

from tests.metrics import value
from tests.support import event_body, free_port, sign
from webhooks import create_app
from worker.broker import build_broker, event_message
from worker.intake import encode_envelope, push


def test_healthz_answers_ok(client):
    """The process is alive."""
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_readyz_is_ready_with_redis_and_database(client):
    """Both Redis and the database answer → 200 ready."""
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"redis": "ok", "database": "ok"}


def test_readyz_is_unavailable_without_redis(edge_settings):
    """No Redis → 503 with the failing check named."""
    app = create_app(replace(edge_settings, redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["redis"] != "ok"


def test_metrics_count_accepted_and_rejected(client):
    """A signed delivery counts as received and accepted with one enqueue timed; an unsigned
    one as received and rejected for its missing signature."""
    before = client.get("/metrics").get_data(as_text=True)
    body = event_body()
    assert client.post("/webhooks/stripe", data=body, headers={"Stripe-Signature": sign(body)})
    assert client.post("/webhooks/stripe", data=body).status_code == 400
    after = client.get("/metrics").get_data(as_text=True)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("billing_ops_webhooks_received_total") == 2
    assert grew("billing_ops_webhooks_accepted_total") == 1
    assert grew("billing_ops_webhooks_rejected_total", reason="missing_signature") == 1
    assert grew("billing_ops_webhooks_rejected_total", reason="invalid_signature") == 0
    assert grew("billing_ops_enqueue_seconds_count") == 1


def test_metrics_show_the_queue_as_redis_holds_it(client, redis_url):
    """Queue depth and the head message's age are read from Redis at scrape time: two events
    wait on the events queue, the older one built a minute ago."""
    broker = build_broker(redis_url, edge=False)
    minute_ago = int((time.time() - 60) * 1000)
    broker.enqueue(replace(event_message(event_body("evt_old")), message_timestamp=minute_ago))
    broker.enqueue(event_message(event_body("evt_new")))
    text = client.get("/metrics").get_data(as_text=True)
    assert value(text, "billing_ops_queue_reachable") == 1
    assert value(text, "billing_ops_queue_messages", queue="events", state="waiting") == 2
    assert value(text, "billing_ops_queue_messages", queue="notifications", state="waiting") == 0
    assert 60 <= value(text, "billing_ops_queue_oldest_message_age_seconds", queue="events") < 120
    assert value(text, "billing_ops_queue_oldest_message_age_seconds", queue="clock") == 0


def test_metrics_count_the_intake(client, redis_url):
    """Webhooks accepted by the edge and not yet moved onto Dramatiq are on the intake: two
    wait, the older one accepted a minute ago."""
    queue = build_broker(redis_url, edge=False).client
    minute_ago = int((time.time() - 60) * 1000)
    for arrived_ms, event_id in ((minute_ago, "evt_old"), (minute_ago + 30_000, "evt_new")):
        entry = encode_envelope(event_body(event_id).encode(), arrived_ms, None)
        push(queue, entry, f"billing-ops:seen:{event_id}", 60)
    text = client.get("/metrics").get_data(as_text=True)
    assert value(text, "billing_ops_queue_messages", queue="intake", state="waiting") == 2
    assert value(text, "billing_ops_queue_messages", queue="events", state="waiting") == 0
    assert 60 <= value(text, "billing_ops_queue_oldest_message_age_seconds", queue="intake") < 120


def test_metrics_answer_without_redis(edge_settings):
    """Redis down: the scrape still answers, saying the queue could not be read."""
    app = create_app(replace(edge_settings, redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    response = app.test_client().get("/metrics")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert value(text, "billing_ops_queue_reachable") == 0
    assert "billing_ops_queue_messages" not in text


def test_unknown_route_is_a_json_404(client):
    """Errors outside the contract are JSON too."""
    response = client.get("/nope")
    assert response.status_code == 404
    assert response.get_json() == {"error": "not_found"}


def test_wrong_method_is_a_json_405(client):
    """GET on the webhook endpoint is refused with a JSON 405."""
    response = client.get("/webhooks/stripe")
    assert response.status_code == 405
    assert response.get_json() == {"error": "method_not_allowed"}
