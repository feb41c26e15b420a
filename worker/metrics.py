"""Prometheus metrics of the workers.

With ``PROMETHEUS_MULTIPROC_DIR`` set (``serve`` sets it) every process writes its own files
there and the web process's ``/metrics`` adds them up (``webhooks.metrics``); without it (a CLI
command, a test) the values stay in memory.
"""

from __future__ import annotations

from prometheus_client import Counter

EVENTS_UNKNOWN_API_VERSION = Counter(
    "billing_ops_events_unknown_api_version_total",
    "Events of an API version billing-ops does not know, processed with the closest known "
    "shape (rules.versions), by that shape.",
    ["read_as"],
)


def event_unknown_api_version(read_as: str) -> None:
    """An event was read as ``read_as`` because its own version is unknown (a known version,
    so the label has a bounded set of values)."""
    EVENTS_UNKNOWN_API_VERSION.labels(read_as=read_as).inc()
