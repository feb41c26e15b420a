"""The workers' metrics move with real work: events, cases, notifications, the clock.

These run the pipeline in this process, whose metrics stay in memory (no
``PROMETHEUS_MULTIPROC_DIR``); ``test_metrics_processes.py`` scrapes a real ``serve``.
"""

from __future__ import annotations

from tests.metrics import local
from tests.support import duplicate_subscription_story, envelope, subscription
from worker.cases import list_cases, set_status
from worker.clock.run import run_clock
from worker.pipeline import process_event, utc_now

T0 = 1_764_000_000
SUB_CREATED = "customer.subscription.created"


def test_processed_events_are_counted_by_type_and_timed(engine):
    """Three events of two types: each type's counter grows by its count, and the latency
    histogram by three observations."""
    created = local("billing_ops_events_processed_total", event_type=SUB_CREATED)
    customers = local("billing_ops_events_processed_total", event_type="customer.created")
    timed = local("billing_ops_event_processing_seconds_count")
    for body in duplicate_subscription_story():
        assert process_event(engine, body).status == "processed"
    assert local("billing_ops_events_processed_total", event_type=SUB_CREATED) == created + 2
    assert local("billing_ops_events_processed_total", event_type="customer.created") == (
        customers + 1
    )
    assert local("billing_ops_event_processing_seconds_count") == timed + 3


def test_a_redelivery_counts_as_duplicate_not_processed(engine):
    """The same event twice: one processed, one duplicate."""
    body = duplicate_subscription_story()[0]
    process_event(engine, body)
    processed = local("billing_ops_events_processed_total", event_type="customer.created")
    duplicates = local("billing_ops_events_duplicate_total", event_type="customer.created")
    assert process_event(engine, body).status == "duplicate"
    assert local("billing_ops_events_processed_total", event_type="customer.created") == processed
    assert local("billing_ops_events_duplicate_total", event_type="customer.created") == (
        duplicates + 1
    )


def test_an_unreadable_delivery_counts_as_failed_under_other(engine):
    """A body that is not an event is kept failed at once and counted as failed; a type that
    is not a Stripe event type is not a label of its own."""
    before = local("billing_ops_events_failed_total", event_type="other")
    assert process_event(engine, '{"id": "evt_bad", "type": "<!channel> x"}').status == (
        "malformed"
    )
    assert local("billing_ops_events_failed_total", event_type="other") == before + 1


def test_cases_opened_and_resolved_are_counted_by_kind_and_resolver(engine):
    """A duplicate opens a case; cancelling the copy resolves it (billing_ops); a second
    duplicate, resolved by an operator, counts as resolved by an operator."""
    kind = "duplicate_subscription"
    opened = local("billing_ops_cases_opened_total", kind=kind)
    by_system = local("billing_ops_cases_resolved_total", kind=kind, by="billing_ops")
    by_operator = local("billing_ops_cases_resolved_total", kind=kind, by="operator")
    for body in duplicate_subscription_story():
        process_event(engine, body)
    assert local("billing_ops_cases_opened_total", kind=kind) == opened + 1
    cancelled = subscription("sub_2", "cus_1", created=T0 + 60, status="canceled")
    process_event(engine, envelope("evt_4", "customer.subscription.deleted", cancelled, T0 + 90))
    assert local("billing_ops_cases_resolved_total", kind=kind, by="billing_ops") == by_system + 1
    process_event(engine, envelope("evt_5", SUB_CREATED,
                  subscription("sub_3", "cus_1", created=T0 + 120), T0 + 120))  # fmt: skip
    [case] = [c for c in list_cases(engine, status="open") if c["kind"] == kind]
    set_status(engine, case["id"], "resolved", actor="sam", note="refunded", now=utc_now())
    assert local("billing_ops_cases_resolved_total", kind=kind, by="operator") == by_operator + 1
    assert local("billing_ops_cases_opened_total", kind=kind) == opened + 2


def test_clock_runs_are_counted(engine):
    """A clock run with nobody due still counts as a run."""
    before = local("billing_ops_clock_runs_total", outcome="ran")
    assert run_clock(engine, utc_now()).ran
    assert local("billing_ops_clock_runs_total", outcome="ran") == before + 1
