"""The clock on the real store (SQLite and PostgreSQL): time alone opens and updates cases.

Time is passed in (``now``), never read: each test says at which instant the clock runs.
Stripe facts: customer.subscription.trial_will_end is sent "three days before a subscription's
trial period is scheduled to end" (API reference, Types of events); a card works through its
expiry month (customer.source.expiring: "will expire at the end of the month").
"""

from __future__ import annotations

import json
import threading
from typing import Any

from alembic import command
from sqlalchemy import delete, select

from tests.support import customer, envelope, event_fixture
from tests.worker.clock_stories import (
    CARD_EXPIRES,
    DAY,
    T0,
    TRIAL_END,
    at,
    paying_with_card,
    trial_without_card,
)
from worker.cases import get_case, list_cases
from worker.clock import lease
from worker.clock.run import run_clock
from worker.pipeline import process_event
from worker.store.db import (
    alembic_config,
    make_engine,
    read_session,
    upgrade_database,
    write_session,
)
from worker.store.tables import ClockDueRow, ClockLeaseRow


def feed(engine, bodies: list[str]) -> None:
    for body in bodies:
        assert process_event(engine, body).status == "processed"


def churn_cases(engine, status: str | None = "open") -> list[dict[str, Any]]:
    return [c for c in list_cases(engine, status=status) if c["kind"] == "churn_signal"]


def test_clock_opens_the_trial_case_at_stripes_notice_time(engine):
    """No event after the sign-up: at trial_end - 3 days, Stripe's notice time, the clock opens
    the trial-ending case; two days earlier it does nothing."""
    feed(engine, trial_without_card())
    assert churn_cases(engine) == []
    early = run_clock(engine, at(TRIAL_END - 5 * DAY))
    assert early.ran and early.evaluated == () and churn_cases(engine) == []
    run = run_clock(engine, at(TRIAL_END - 3 * DAY))
    assert run.evaluated == ("cus_T",)
    (case,) = churn_cases(engine)
    assert case["key"] == "churn_signal:sub_T"
    assert "with no payment method on file" in case["reasoning"]
    assert len(run.cases_opened) == 1


def test_clock_opens_a_card_expiry_case_with_no_other_event(engine):
    """A card on file, then silence: 30 days before it stops working the clock opens the
    card-expiring case, and once it has stopped the case says so."""
    feed(engine, paying_with_card())
    assert run_clock(engine, at(CARD_EXPIRES - 31 * DAY)).evaluated == ()
    assert churn_cases(engine) == []
    run_clock(engine, at(CARD_EXPIRES - 30 * DAY))
    (case,) = churn_cases(engine)
    assert case["key"] == "churn_signal:sub_cus_C"
    assert "expires 2026-07-01" in case["reasoning"]
    run_clock(engine, at(CARD_EXPIRES + 60))
    (case,) = churn_cases(engine)
    with read_session(engine) as session:
        row = session.get(ClockDueRow, "cus_C")
    assert row is not None and row.due_at is None  # nothing later can change with time


def test_clock_warns_of_a_dispute_evidence_deadline_with_no_other_event(engine):
    """A dispute awaiting evidence: two days before evidence_details.due_by the clock adds
    "respond today" to its case, and at due_by says the deadline passed."""
    charge = event_fixture("charge.succeeded__card.json")
    dispute = event_fixture("charge.dispute.created__subscription_canceled.json")
    feed(engine, [json.dumps(charge), json.dumps(dispute)])
    due_by = dispute["data"]["object"]["evidence_details"]["due_by"]
    (case,) = list_cases(engine, kind="dispute")
    run_clock(engine, at(due_by - 2 * DAY))
    shown = get_case(engine, case["id"])
    assert "Respond today" in " ".join(shown["handoff"].values())
    assert shown["timeline"][-1]["event_id"] == f"clock_{due_by - 2 * DAY}"
    run_clock(engine, at(due_by))
    shown = get_case(engine, case["id"])
    assert "has passed" in " ".join(shown["handoff"].values())


def test_clock_warns_of_the_deadline_of_a_dispute_on_a_charge_never_seen(engine):
    """A dispute whose charge (and so customer) billing-ops never saw still comes due."""
    dispute = event_fixture("charge.dispute.created__subscription_canceled.json")
    feed(engine, [json.dumps(dispute)])
    due_by = dispute["data"]["object"]["evidence_details"]["due_by"]
    (case,) = list_cases(engine, kind="dispute")
    run = run_clock(engine, at(due_by - 2 * DAY))
    assert run.evaluated == ("object:dispute:dp_Canceled",)
    assert "Respond today" in " ".join(get_case(engine, case["id"])["handoff"].values())


def test_the_clock_touches_only_the_people_who_are_due(engine):
    """Of two people, only the one whose instant has come is evaluated."""
    feed(engine, trial_without_card())
    feed(engine, paying_with_card())
    run = run_clock(engine, at(TRIAL_END - 3 * DAY))
    assert run.evaluated == ("cus_T",)


def test_an_event_writes_the_next_due_time_with_the_projection(engine):
    """Processing the sign-up records when the trial window opens (a day before Stripe's
    notice, the leeway for an early notice)."""
    feed(engine, trial_without_card())
    with read_session(engine) as session:
        row = session.get(ClockDueRow, "cus_T")
    assert row is not None
    assert (row.due_at, row.reason, row.subject) == (TRIAL_END - 4 * DAY, "trial_notice", "sub_T")


def test_a_late_event_does_not_undo_what_the_clock_saw(engine):
    """An event stamped before the clock's run (delivered late) is evaluated no earlier than
    the clock's instant, so the open trial case stays open."""
    feed(engine, trial_without_card())
    run_clock(engine, at(TRIAL_END - 3 * DAY))
    late = customer("cus_T", "cus_T@example.com", created=T0, name="Tess Late")
    late["invoice_settings"] = {"default_payment_method": None}
    feed(engine, [envelope("evt_late", "customer.updated", late, TRIAL_END - 6 * DAY)])
    assert [c["key"] for c in churn_cases(engine)] == ["churn_signal:sub_T"]


def test_a_run_while_another_holds_the_lease_does_nothing(engine):
    """The lease makes a second run step aside; once released the next run works."""
    feed(engine, trial_without_card())
    assert lease.acquire(engine, "other-worker")
    skipped = run_clock(engine, at(TRIAL_END - 3 * DAY))
    assert not skipped.ran and churn_cases(engine) == []
    lease.release(engine, "other-worker")
    assert run_clock(engine, at(TRIAL_END - 3 * DAY)).evaluated == ("cus_T",)


def test_two_concurrent_runs_evaluate_each_person_once(engine):
    """Two runs started together from two engines (two workers' connection pools): one does
    the work, each due person is evaluated once, and their cases open once."""
    for n in range(6):
        feed(engine, trial_without_card(f"cus_T{n}", f"sub_T{n}"))
    barrier = threading.Barrier(2)
    results = []

    def one_run() -> None:
        other = make_engine(engine.url.render_as_string(hide_password=False))
        try:
            barrier.wait()
            results.append(run_clock(other, at(TRIAL_END - 3 * DAY)))
        finally:
            other.dispose()

    threads = [threading.Thread(target=one_run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [bool(r.evaluated) for r in results].count(True) == 1  # one did the work
    evaluated = [key for r in results for key in r.evaluated]
    assert sorted(evaluated) == [f"cus_T{n}" for n in range(6)]
    assert len(churn_cases(engine)) == 6
    with read_session(engine) as session:
        lease_row = session.scalars(select(ClockLeaseRow)).one()
    assert lease_row.holder is None  # released


def test_an_upgraded_install_has_everyone_due_once(database_url, tmp_path):
    """People stored before the clock existed are due at once after the upgrade, so the first
    run finds the trial already in its last days."""
    engine = make_engine(database_url)
    upgrade_database(engine, tmp_path)
    feed(engine, trial_without_card())
    # the install as it stood at 0004, before the clock's backfill: today's code writes the
    # person's objects (it cannot run on an old schema), then the schema goes back to 0004
    command.downgrade(alembic_config(engine), "0004")
    with write_session(engine) as session:
        session.execute(delete(ClockDueRow))  # as before the clock: nobody scheduled
    upgrade_database(engine, tmp_path)
    run = run_clock(engine, at(TRIAL_END - 2 * DAY))
    assert run.evaluated == ("cus_T",)
    assert [c["key"] for c in churn_cases(engine)] == ["churn_signal:sub_T"]
    engine.dispose()
