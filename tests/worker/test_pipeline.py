"""One event through the worker pipeline: recorded once, projected, evaluated, cased."""

from __future__ import annotations

import json
import threading

from sqlalchemy import func, select

from tests.support import customer, envelope, subscription
from worker.cases import list_cases
from worker.pipeline import process_batch, process_event
from worker.store import events as event_log
from worker.store.tables import EventRow

T0 = 1_764_000_000


def _count_events(engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(EventRow))


def test_event_is_recorded_once_and_redelivery_is_a_no_op(engine):
    """The same event processed twice leaves one stored event, the second is a duplicate."""
    body = envelope(
        "evt_c1", "customer.created", customer("cus_1", "a@example.com", created=T0), T0
    )
    assert process_event(engine, body).status == "processed"
    assert process_event(engine, body).status == "duplicate"
    assert _count_events(engine) == 1
    assert [e.id for e in event_log.list_events(engine, event_log.PROCESSED)] == ["evt_c1"]


def test_malformed_event_is_kept_as_a_failed_row(engine):
    """A body that is not an event object is reported malformed and kept for an operator."""
    outcome = process_event(engine, json.dumps({"hello": 1}))
    assert outcome.status == "malformed"
    assert [e.id for e in event_log.list_events(engine, event_log.FAILED)] == [outcome.event_id]
    assert _count_events(engine) == 1


def test_two_live_subscriptions_open_one_duplicate_case(engine):
    """Two active subscriptions to one product for one customer open one case."""
    process_event(
        engine,
        envelope("evt_c", "customer.created", customer("cus_1", "a@example.com", created=T0), T0),
    )
    process_event(
        engine,
        envelope(
            "evt_s1",
            "customer.subscription.created",
            subscription("sub_1", "cus_1", created=T0 + 10),
            T0 + 10,
        ),
    )
    process_event(
        engine,
        envelope(
            "evt_s2",
            "customer.subscription.created",
            subscription("sub_2", "cus_1", created=T0 + 70),
            T0 + 70,
        ),
    )
    cases = list_cases(engine)
    assert [(c["kind"], c["classification"]) for c in cases] == [
        ("duplicate_subscription", "accidental_duplicate")
    ]
    assert cases[0]["recommended_action"]["target"] == "sub_2"


def test_cancelling_the_duplicate_resolves_the_case(engine):
    """When the newer subscription is cancelled the duplicate no longer holds: case resolved."""
    process_event(
        engine,
        envelope(
            "evt_s1",
            "customer.subscription.created",
            subscription("sub_1", "cus_1", created=T0),
            T0,
        ),
    )
    process_event(
        engine,
        envelope(
            "evt_s2",
            "customer.subscription.created",
            subscription("sub_2", "cus_1", created=T0 + 60),
            T0 + 60,
        ),
    )
    canceled = subscription("sub_2", "cus_1", created=T0 + 60, status="canceled")
    canceled["canceled_at"] = T0 + 600
    process_event(engine, envelope("evt_s2x", "customer.subscription.deleted", canceled, T0 + 600))
    dup = [c for c in list_cases(engine) if c["kind"] == "duplicate_subscription"]
    assert [c["status"] for c in dup] == ["resolved"]


def test_concurrent_workers_still_see_each_others_subscription(engine):
    """Two subscriptions of one person processed at the same instant by two threads are
    still evaluated against each other (the per-person lock serialises them)."""
    for round_ in range(5):
        runners = (process_event, process_event)
        assert _open_duplicates_after_race(engine, runners, f"r{round_}") == 1


def test_concurrent_batches_still_see_each_others_subscription(engine):
    """The same race on the intake's batch path: two batches, or a batch and a single event,
    each carrying one of a person's two same-second subscriptions, committed at the same
    instant, still see each other (the batch holds every person's lock too)."""
    runners = {"bb": (_as_batch, _as_batch), "be": (_as_batch, process_event)}
    for name, pair in runners.items():
        for round_ in range(5):
            assert _open_duplicates_after_race(engine, pair, f"{name}{round_}") == 1, name


def _open_duplicates_after_race(engine, runners, tag: str) -> int:  # noqa: ANN001
    """Race one person's two same-second subscriptions through ``runners`` (one each); the
    open duplicate-subscription cases about them afterwards."""
    bodies = [
        envelope(f"evt_{tag}_{i}", "customer.subscription.created",
                 subscription(f"sub_{tag}_{i}", f"cus_{tag}", created=T0), T0)
        for i in range(2)
    ]  # fmt: skip
    _race(engine, list(zip(runners, bodies, strict=True)))
    return len(
        [
            c
            for c in list_cases(engine, kind="duplicate_subscription")
            if c["status"] == "open" and f"sub_{tag}_" in c["key"]
        ]
    )


def _as_batch(engine, body: str) -> None:  # noqa: ANN001
    list(process_batch(engine, [body]))


def _race(engine, jobs) -> None:  # noqa: ANN001
    """Run each (function, body) on its own thread, released together; errors re-raised."""
    barrier = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def work(run, body: str) -> None:  # noqa: ANN001
        try:
            barrier.wait()
            run(engine, body)
        except BaseException as error:  # noqa: BLE001 - surfaced below
            errors.append(error)

    threads = [threading.Thread(target=work, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


def _dispute(status: str) -> dict:
    """A dispute on a charge billing-ops never saw (Stripe's Dispute object shape)."""
    return {
        "id": "dp_Stranger",
        "object": "dispute",
        "amount": 4900,
        "charge": "ch_NeverSeen",
        "currency": "usd",
        "created": T0,
        "evidence_details": {"due_by": T0 + 20 * 86_400, "has_evidence": False},
        "is_charge_refundable": False,
        "payment_intent": "pi_NeverSeen",
        "reason": "product_not_received",
        "status": status,
    }


def test_dispute_on_an_unseen_charge_opens_a_case_and_its_close_resolves_it(engine):
    """charge.dispute.created for an unknown charge opens a case; the close resolves it."""
    created = envelope("evt_dc", "charge.dispute.created", _dispute("needs_response"), T0)
    assert process_event(engine, created).findings == ("dispute:dp_Stranger",)
    (case,) = list_cases(engine, status="open")
    assert case["key"] == "dispute:dp_Stranger" and case["customer"]["id"] == ""
    closed = envelope("evt_dx", "charge.dispute.closed", _dispute("lost"), T0 + 86_400)
    assert process_event(engine, closed).cases_resolved == (case["id"],)
