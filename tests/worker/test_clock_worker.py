"""The periodic clock through a real Dramatiq worker on real Redis: nobody calls it, it runs."""

from __future__ import annotations

import dataclasses
import time

import dramatiq
import pytest
from sqlalchemy import select

from tests.worker.clock_stories import DAY, trial_without_card
from worker.actors import setup
from worker.cases import list_cases
from worker.pipeline import process_event
from worker.store.db import read_session
from worker.store.tables import ClockLeaseRow


@pytest.fixture
def runtime(settings):
    rt = setup(dataclasses.replace(settings, clock_interval_seconds=1))
    worker = dramatiq.Worker(rt.broker, worker_threads=2, worker_timeout=100)
    worker.start()
    yield rt
    worker.stop()
    rt.engine.dispose()


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def trial_cases(engine) -> set[str]:
    return {c["key"] for c in list_cases(engine, status="open") if c["kind"] == "churn_signal"}


def clock_runs(engine) -> int:
    with read_session(engine) as session:
        return session.scalars(select(ClockLeaseRow.runs)).one()


def test_the_worker_runs_the_clock_every_interval(runtime):
    """Trials that entered their last days with no event: the worker's own clock opens their
    cases, the first at boot and the second on a later interval."""
    now = int(time.time())
    # signed up 12 days ago for a 14-day trial: no case at sign-up, due two days ago
    for body in trial_without_card(
        "cus_W1", "sub_W1", start=now - 12 * DAY, trial_end=now + 2 * DAY
    ):
        process_event(runtime.engine, body)
    wait_for(lambda: trial_cases(runtime.engine) == {"churn_signal:sub_W1"})
    runs_before = clock_runs(runtime.engine)
    for body in trial_without_card(
        "cus_W2", "sub_W2", start=now - 12 * DAY, trial_end=now + 2 * DAY
    ):
        process_event(runtime.engine, body)
    wait_for(lambda: "churn_signal:sub_W2" in trial_cases(runtime.engine))
    assert clock_runs(runtime.engine) > runs_before
