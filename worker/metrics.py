"""Prometheus metrics of the workers: what happened to events, cases, notifications and the clock.

The pipeline, the clock, delivery and the case commands call the named functions below at
clear points (after their transaction committed), so the metric definitions and their labels
live in one place. With ``PROMETHEUS_MULTIPROC_DIR`` set (``serve``, ``web`` and ``worker``
set it) every process writes its own files there and the web process's ``/metrics`` adds
them up (``webhooks.metrics``); the queue's depth is read from Redis at scrape time instead
(``worker.queue_depth``). Without it (a CLI command, a test) the values stay in memory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum

from prometheus_client import Counter, Histogram

#: An event type as a label: Stripe's dotted lowercase names; anything else is ``other``, so a
#: hostile body cannot create unbounded series.
_EVENT_TYPE = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+){0,6}")
OTHER_EVENT_TYPE = "other"


class Resolver(StrEnum):
    """Who resolved a case: billing-ops (its condition cleared) or an operator."""

    BILLING_OPS = "billing_ops"
    OPERATOR = "operator"


EVENTS_PROCESSED = Counter(
    "billing_ops_events_processed_total",
    "Stripe events processed (their effects committed), by event type.",
    ["event_type"],
)
EVENTS_DUPLICATE = Counter(
    "billing_ops_events_duplicate_total",
    "Deliveries of an event already processed (no effect), by event type.",
    ["event_type"],
)
EVENT_ATTEMPTS_FAILED = Counter(
    "billing_ops_event_attempts_failed_total",
    "Attempts to process an event that raised (each retry counts), by event type.",
    ["event_type"],
)
EVENTS_FAILED = Counter(
    "billing_ops_events_failed_total",
    "Events that failed for good (retries exhausted, or unreadable): `events failed` lists them.",
    ["event_type"],
)
EVENT_PROCESSING_SECONDS = Histogram(
    "billing_ops_event_processing_seconds",
    "Time a worker spent on one event, from taking it to committing its effects.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
ARRIVAL_TO_CASE_SECONDS = Histogram(
    "billing_ops_arrival_to_case_seconds",
    "From the webhook's acceptance at the edge to the case it opened or updated being committed.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0),
)
CASES_OPENED = Counter("billing_ops_cases_opened_total", "Cases opened, by kind.", ["kind"])
CASES_REOPENED = Counter(
    "billing_ops_cases_reopened_total", "Resolved cases whose problem came back, by kind.", ["kind"]
)
CASES_RESOLVED = Counter(
    "billing_ops_cases_resolved_total",
    "Cases resolved, by kind and by whom (billing_ops when the condition cleared, operator).",
    ["kind", "by"],
)
NOTIFICATIONS_SENT = Counter(
    "billing_ops_notifications_sent_total",
    "Outbox notifications delivered, by channel.",
    ["channel"],
)
NOTIFICATIONS_FAILED = Counter(
    "billing_ops_notifications_failed_total",
    "Outbox notifications given up on (permanent error or attempts exhausted), by channel.",
    ["channel"],
)
NOTIFICATIONS_WITHDRAWN = Counter(
    "billing_ops_notifications_withdrawn_total",
    "Outbox notifications not sent because their case no longer called for them when they "
    "were due (resolved, or below the channel's bar), by channel.",
    ["channel"],
)
NOTIFICATIONS_RETRIED = Counter(
    "billing_ops_notification_retries_total",
    "Transient delivery failures put back for a later attempt, by channel.",
    ["channel"],
)
CLOCK_RUNS = Counter(
    "billing_ops_clock_runs_total",
    "Clock runs, by outcome (ran, or skipped while another run held the lease).",
    ["outcome"],
)
CLOCK_EVALUATIONS = Counter(
    "billing_ops_clock_evaluations_total", "People evaluated by the clock because they were due."
)
EVENTS_UNKNOWN_API_VERSION = Counter(
    "billing_ops_events_unknown_api_version_total",
    "Events of an API version billing-ops does not know, processed with the closest known "
    "shape (rules.versions), by that shape.",
    ["read_as"],
)


def event_type_label(event_type: str | None) -> str:
    """``event_type`` when it looks like a Stripe event type, else ``other``."""
    if event_type and len(event_type) <= 100 and _EVENT_TYPE.fullmatch(event_type):
        return event_type
    return OTHER_EVENT_TYPE


def event_processed(event_type: str, *, seconds: float | None) -> None:
    """One event's effects committed, after ``seconds`` of work (None: processed in a batch
    of a replay, which has no time of its own)."""
    EVENTS_PROCESSED.labels(event_type=event_type_label(event_type)).inc()
    if seconds is not None:
        EVENT_PROCESSING_SECONDS.observe(seconds)


def event_duplicate(event_type: str) -> None:
    EVENTS_DUPLICATE.labels(event_type=event_type_label(event_type)).inc()


def event_attempt_failed(event_type: str | None, *, final: bool) -> None:
    """An attempt raised; ``final`` when no retry follows (the event is now ``failed``)."""
    label = event_type_label(event_type)
    EVENT_ATTEMPTS_FAILED.labels(event_type=label).inc()
    if final:
        EVENTS_FAILED.labels(event_type=label).inc()


def event_unreadable(event_type: str | None) -> None:
    """A delivery kept ``failed`` at once: it cannot be processed, however often retried."""
    EVENTS_FAILED.labels(event_type=event_type_label(event_type)).inc()


def case_reached(seconds_since_arrival: float) -> None:
    """An event's case change committed this long after the edge accepted the event."""
    ARRIVAL_TO_CASE_SECONDS.observe(max(seconds_since_arrival, 0.0))


def cases_changed(changes: Iterable[tuple[str, str]]) -> None:
    """Committed case changes as ``(kind, change)``: ``opened``, ``reopened``,
    ``auto_resolved`` are counted; ``updated`` is not a new case."""
    for kind, change in changes:
        if change == "opened":
            CASES_OPENED.labels(kind=kind).inc()
        elif change == "reopened":
            CASES_REOPENED.labels(kind=kind).inc()
        elif change == "auto_resolved":
            CASES_RESOLVED.labels(kind=kind, by=Resolver.BILLING_OPS.value).inc()


def case_resolved_by_operator(kind: str) -> None:
    CASES_RESOLVED.labels(kind=kind, by=Resolver.OPERATOR.value).inc()


def notification_settled(channel: str, status: str) -> None:
    """An outbox row reached ``sent``, ``failed`` or ``withdrawn`` (a case that settled into
    not needing it); cancelled and skipped rows are not counted."""
    if status == "sent":
        NOTIFICATIONS_SENT.labels(channel=channel).inc()
    elif status == "failed":
        NOTIFICATIONS_FAILED.labels(channel=channel).inc()
    elif status == "withdrawn":
        NOTIFICATIONS_WITHDRAWN.labels(channel=channel).inc()


def notification_retried(channel: str) -> None:
    NOTIFICATIONS_RETRIED.labels(channel=channel).inc()


def clock_ran(*, ran: bool) -> None:
    CLOCK_RUNS.labels(outcome="ran" if ran else "skipped").inc()


def clock_evaluated() -> None:
    CLOCK_EVALUATIONS.inc()


def event_unknown_api_version(read_as: str) -> None:
    """An event was read as ``read_as`` because its own version is unknown (a known version,
    so the label has a bounded set of values)."""
    EVENTS_UNKNOWN_API_VERSION.labels(read_as=read_as).inc()
