"""Prometheus metrics of the HTTP edge, and ``/metrics`` for the whole pipeline.

With ``PROMETHEUS_MULTIPROC_DIR`` set (``serve``, ``web`` and ``worker`` set it; see
``worker.metrics_dir``) every gunicorn and Dramatiq process writes its own files there and a
scrape adds them up with prometheus-client's ``MultiProcessCollector``: the edge's counters
below and the workers' (``worker.metrics``). The queues' depth and oldest message age are read
from Redis at scrape time (``worker.queue_depth``), never stored.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector

WEBHOOKS_RECEIVED = Counter("billing_ops_webhooks_received_total", "Webhook deliveries received.")
WEBHOOKS_ACCEPTED = Counter(
    "billing_ops_webhooks_accepted_total", "Webhook deliveries verified and put on the queue."
)
WEBHOOKS_REJECTED = Counter(
    "billing_ops_webhooks_rejected_total", "Webhook deliveries refused, by reason.", ["reason"]
)
ENQUEUE_SECONDS = Histogram(
    "billing_ops_enqueue_seconds",
    "Time to put one verified event on the Redis intake (one round trip).",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)


def render_metrics(multiprocess_dir: str | None, queues: Collector) -> tuple[bytes, str]:
    """The exposition text: every process's metrics (aggregated in multiprocess mode, this
    process's own otherwise) and the queues as Redis shows them now."""
    live = CollectorRegistry()
    live.register(queues)
    if multiprocess_dir:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=multiprocess_dir)
        return generate_latest(registry) + generate_latest(live), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY) + generate_latest(live), CONTENT_TYPE_LATEST
