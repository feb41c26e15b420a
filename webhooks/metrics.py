"""Prometheus metrics of the HTTP edge.

Under gunicorn with several workers, set ``PROMETHEUS_MULTIPROC_DIR`` (``serve`` does) so that
``/metrics`` adds up every worker process.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

WEBHOOKS_RECEIVED = Counter("billing_ops_webhooks_received_total", "Webhook deliveries received.")
WEBHOOKS_ACCEPTED = Counter(
    "billing_ops_webhooks_accepted_total", "Webhook deliveries verified and put on the queue."
)
WEBHOOKS_REJECTED = Counter(
    "billing_ops_webhooks_rejected_total", "Webhook deliveries refused, by reason.", ["reason"]
)
ENQUEUE_SECONDS = Histogram(
    "billing_ops_enqueue_seconds",
    "Time to put one verified event on the Redis queue.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)


def render_metrics(multiprocess_dir: str | None) -> tuple[bytes, str]:
    """The exposition text (aggregated across processes in multiprocess mode)."""
    if multiprocess_dir:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
