"""Liveness, readiness and metrics."""

from __future__ import annotations

from dataclasses import replace

from tests.support import event_body, free_port, sign
from webhooks import create_app


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
    """/metrics exposes received, accepted and rejected-by-reason counters."""
    body = event_body()
    client.post("/webhooks/stripe", data=body, headers={"Stripe-Signature": sign(body)})
    client.post("/webhooks/stripe", data=body)
    text = client.get("/metrics").get_data(as_text=True)
    assert "billing_ops_webhooks_accepted_total" in text
    assert 'billing_ops_webhooks_rejected_total{reason="missing_signature"}' in text
    assert "billing_ops_enqueue_seconds_bucket" in text


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
