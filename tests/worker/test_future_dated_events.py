"""An event stamped far in the future cannot win the snapshot order forever: the order trusts
``created`` only up to a little past the time the worker received it (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.support import envelope, subscription
from worker.lookup import lookup
from worker.pipeline import process_event

T0 = 1_764_000_000
FAR_FUTURE = 2**37  # the year 6325: still a valid datetime, so the edge lets it through


def _clock(at: int):
    return lambda: datetime.fromtimestamp(at, UTC)


def test_real_cancellation_beats_a_future_dated_snapshot(engine):
    """A subscription snapshot dated 6325, then a real cancellation: the cancellation wins."""
    live = envelope(
        "evt_future",
        "customer.subscription.updated",
        subscription("sub_1", "cus_1", created=T0),
        FAR_FUTURE,
    )
    canceled = envelope(
        "evt_cancel",
        "customer.subscription.deleted",
        subscription("sub_1", "cus_1", created=T0, status="canceled"),
        T0 + 600,
    )
    assert process_event(engine, live, clock=_clock(T0)).status == "processed"
    assert process_event(engine, canceled, clock=_clock(T0 + 600)).status == "processed"
    doc = lookup(engine, "sub_1")
    assert [s["id"] for s in doc["subscriptions"]["canceled"]] == ["sub_1"]
    assert doc["subscriptions"]["active"] == []


def test_replayed_old_events_keep_their_own_times(engine):
    """Clamping only touches the future: an old cancellation replayed today still orders by
    its own time against an older snapshot."""
    canceled = envelope(
        "evt_cancel",
        "customer.subscription.deleted",
        subscription("sub_1", "cus_1", created=T0, status="canceled"),
        T0 + 600,
    )
    live = envelope(
        "evt_live",
        "customer.subscription.updated",
        subscription("sub_1", "cus_1", created=T0),
        T0 + 60,
    )
    today = _clock(T0 + 90 * 86400)
    process_event(engine, canceled, clock=today)
    process_event(engine, live, clock=today)
    assert [s["id"] for s in lookup(engine, "sub_1")["subscriptions"]["canceled"]] == ["sub_1"]
