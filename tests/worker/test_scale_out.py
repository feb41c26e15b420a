"""Scale-out: 1, 2 or 4 worker processes on one PostgreSQL end with the same open cases.

The same deterministic stream (every scenario folder, copied with its ids made unique per copy,
newest first, some events delivered twice) is pushed onto the intake as the edge does, then drained
by a real ``billing-ops worker`` with 1, then 2, then 4 Dramatiq processes, each time into a
fresh database. The open cases must be the same every time, and the ones an in-order,
single-threaded run through ``worker.pipeline.process_event`` opens.

Only open cases are compared. Stripe does not guarantee delivery order ("Webhooks" → "Event
ordering", docs.stripe.com/webhooks#event-ordering), and concurrent workers take a person's
events in a different order on every run, so a case's history may legitimately differ: a
renewal paid before its failure is processed never opens a case, the other order opens one and
auto-resolves it. What is open once every event is processed must not depend on it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import Engine, func, select

from tests.conftest import _fresh_postgres
from tests.serving import BILLING_OPS, wait_for
from tests.support import FIXTURES, SECRET, stop_group
from worker.cases import list_cases
from worker.intake import INTAKE_KEY, encode_envelope, push
from worker.pipeline import process_event
from worker.store.db import make_engine, upgrade_database
from worker.store.tables import EventRow

SCENARIOS = FIXTURES / "scenarios"
#: Copies of every scenario folder: about 600 deliveries, enough for every process to take
#: batches of the same people at the same time.
COPIES = 4
#: Arrival times of the intake entries (Unix ms); the edge's clock, not the events'.
ARRIVED_MS = 1_764_000_000_000
#: Stripe ids of the objects a story is about (products, prices and plans stay shared).
_STORY_ID = re.compile(r"(evt|cus|sub|in|ch|pi|pm|card|fp|dp|du|issfr|cs|si|il|li|sli|inpay)_\w+")


def _renamed(value: Any, tag: str) -> Any:
    """``value`` with every story id and email made this copy's own."""
    if isinstance(value, dict):
        return {key: _renamed(item, tag) for key, item in value.items()}
    if isinstance(value, list):
        return [_renamed(item, tag) for item in value]
    if isinstance(value, str):
        if _STORY_ID.fullmatch(value):
            return f"{value}{tag}"
        if "@" in value:
            return f"{tag[1:]}-{value}"
    return value


def scenario_copies() -> list[str]:
    """Every scenario event, ``COPIES`` times over with unique ids, in folder order."""
    folders = sorted(p for p in SCENARIOS.iterdir() if p.is_dir())
    return [
        json.dumps(_renamed(json.loads(path.read_text()), f"_s{number}c{copy}"))
        for copy in range(COPIES)
        for number, folder in enumerate(folders)
        for path in sorted(folder.glob("[0-9]*.json"))
    ]


def arrivals(events: list[str]) -> list[str]:
    """The stream as it reaches the edge: newest first (the hardest order: cancellations
    before sign-ups, payments before failures), then every fifth event again (Stripe's
    retries)."""
    return events[::-1] + events[::5]


#: Kind, subjects, classification, severity and recommended action type.
OpenCase = tuple[str, tuple[str, ...], str, str, str | None]


def open_cases(engine: Engine) -> list[OpenCase]:
    """Kind, subjects, classification, severity and recommended action of each open case."""
    return sorted(
        (
            case["kind"],
            tuple(case["subjects"]),
            case["classification"],
            case["severity"],
            (case.get("recommended_action") or {}).get("type"),
        )
        for case in list_cases(engine, status="open")
    )


def _fresh_database(postgres_url: str, data_dir: Path) -> Engine:
    """This run's PostgreSQL database, emptied and migrated."""
    engine = make_engine(_fresh_postgres(postgres_url))
    upgrade_database(engine, data_dir)
    return engine


def _processed(engine: Engine) -> int:
    with engine.connect() as connection:
        query = select(func.count()).where(EventRow.status == "processed")
        return int(connection.scalar(query) or 0)


def _cases_with_workers(
    processes: int, stream: list[str], postgres_url: str, redis_url: str, data_dir: Path
) -> list[OpenCase]:
    """Push ``stream`` onto the intake, drain it with ``billing-ops worker --processes N``."""
    engine = _fresh_database(postgres_url, data_dir)
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    for number, body in enumerate(stream):
        event_id = json.loads(body)["id"]
        entry = encode_envelope(body.encode(), ARRIVED_MS + number, f"req-{number}")
        push(client, entry, f"billing-ops:seen:{event_id}", 600)
    unique = len({json.loads(body)["id"] for body in stream})
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(REDIS_URL=redis_url, DATABASE_URL=postgres_url, STRIPE_WEBHOOK_SECRET=SECRET,
               BILLING_OPS_DATA_DIR=str(data_dir), BILLING_OPS_LOG_FORMAT="json")  # fmt: skip
    worker = subprocess.Popen(
        [BILLING_OPS, "worker", "--processes", str(processes), "--threads", "2"],
        env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: _processed(engine) == unique, 120, f"{processes} processes done")
        wait_for(lambda: client.llen(INTAKE_KEY) == 0, 10, "the intake drained")
    finally:
        stop_group(worker, timeout=30)
    cases = open_cases(engine)
    engine.dispose()
    return cases


@pytest.fixture
def in_order_cases(tmp_path: Path, postgres_run_url: str) -> list[OpenCase]:
    """The open cases of the copies processed once each, in folder order, in this process."""
    engine = _fresh_database(postgres_run_url, tmp_path / "in-order")
    for body in scenario_copies():
        process_event(engine, body)
    cases = open_cases(engine)
    engine.dispose()
    return cases


def test_one_two_and_four_worker_processes_open_the_in_order_cases(
    in_order_cases, tmp_path, postgres_run_url, redis_url
):
    """The reversed, redelivered stream drained by 1, 2 and 4 real worker processes leaves
    exactly the open cases of the in-order single-threaded run, every time."""
    assert len(in_order_cases) >= COPIES * 10  # the stories do open cases
    stream = arrivals(scenario_copies())
    for processes in (1, 2, 4):
        data_dir = tmp_path / f"workers-{processes}"
        cases = _cases_with_workers(processes, stream, postgres_run_url, redis_url, data_dir)
        assert cases == in_order_cases, f"{processes} worker processes"
