"""The intake pump: accepted webhooks move from the intake list onto Dramatiq, oldest first,
one pump at a time, and nothing leaves the intake before Dramatiq holds it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

import dramatiq
import pytest
import redis
from sqlalchemy import func, select

from tests.serving import wait_for
from tests.support import SECRET, event_body
from worker.broker import EVENTS_QUEUE, PROCESS_EVENT_ACTOR, PROCESS_EVENTS_ACTOR, build_broker
from worker.intake import INTAKE_KEY, Envelope, encode_envelope, push
from worker.intake_pump import BATCH, BATCH_BYTES, LEASE_KEY, IntakePump, batches, enqueue_each
from worker.store.db import make_engine, upgrade_database
from worker.store.tables import EventRow

ARRIVED_MS = 1_764_000_000_000


def _accept(client: redis.Redis, *event_ids: str) -> None:
    """What the edge does for each accepted webhook, in this order."""
    for number, event_id in enumerate(event_ids):
        entry = encode_envelope(
            event_body(event_id).encode(), ARRIVED_MS + number, f"req-{event_id}"
        )
        push(client, entry, f"billing-ops:seen:{event_id}", 60)


def _on_dramatiq(broker) -> list[dramatiq.Message]:
    """The messages on Dramatiq's events queue, in the order a worker takes them."""
    ids = broker.client.lrange(f"{broker.namespace}:{EVENTS_QUEUE}", 0, -1)
    encoded = broker.client.hmget(f"{broker.namespace}:{EVENTS_QUEUE}.msgs", ids) if ids else []
    return [dramatiq.Message.decode(raw) for raw in encoded]


@pytest.fixture
def broker(redis_url):
    return build_broker(redis_url, edge=False)


def test_entries_move_onto_dramatiq_oldest_first_with_their_arrival(broker):
    """Three accepted webhooks become one ``process_events`` message holding them in arrival
    order, each with the edge's request id and arrival time; the intake is then empty."""
    _accept(broker.client, "evt_1", "evt_2", "evt_3")
    assert IntakePump().step(broker) == 3
    [message] = _on_dramatiq(broker)
    assert message.actor_name == PROCESS_EVENTS_ACTOR
    assert message.args[0] == [
        [event_body(f"evt_{n}"), ARRIVED_MS + n - 1, f"req-evt_{n}"] for n in (1, 2, 3)
    ]
    assert broker.client.llen(INTAKE_KEY) == 0


def test_a_long_chunk_goes_out_in_batches(broker):
    """More entries than a batch holds: consecutive batches, oldest first, none lost."""
    event_ids = [f"evt_{n}" for n in range(BATCH + 5)]
    _accept(broker.client, *event_ids)
    assert IntakePump().step(broker) == len(event_ids)
    batches = [m.args[0] for m in _on_dramatiq(broker)]
    assert [len(b) for b in batches] == [BATCH, 5]
    assert [entry[0] for b in batches for entry in b] == [event_body(i) for i in event_ids]


def test_large_bodies_split_a_batch_by_size():
    """Bodies near the edge's 1 MiB cap: no message carries much more than ``BATCH_BYTES``
    (one oversized body still goes alone), order kept, none lost."""
    big = [Envelope("x" * (BATCH_BYTES // 3), n) for n in range(7)]
    huge = Envelope("y" * (BATCH_BYTES + 1), 7)
    runs = batches([*big, huge, Envelope("{}", 8)])
    assert [len(r) for r in runs] == [3, 3, 1, 1, 1]
    assert [e.arrived_ms for r in runs for e in r] == list(range(9))


def test_the_single_event_path_keeps_each_arrival(broker):
    """``enqueue_each`` (a failed batch's fallback): one ``process_event`` message per event,
    in order, with its request id and arrival time."""
    _accept(broker.client, "evt_1", "evt_2")
    assert IntakePump(enqueue=enqueue_each).step(broker) == 2
    messages = _on_dramatiq(broker)
    assert [m.args[0] for m in messages] == [event_body("evt_1"), event_body("evt_2")]
    assert {m.actor_name for m in messages} == {PROCESS_EVENT_ACTOR}
    assert [m.options["request_id"] for m in messages] == ["req-evt_1", "req-evt_2"]
    assert [m.options["arrived_ms"] for m in messages] == [ARRIVED_MS, ARRIVED_MS + 1]


def test_a_step_moves_at_most_one_chunk(broker):
    """A step takes the oldest ``chunk`` entries; the newer ones wait for the next step."""
    _accept(broker.client, "evt_1", "evt_2", "evt_3")
    pump = IntakePump(chunk=2)
    assert pump.step(broker) == 2
    assert [Envelope.decode(e).request_id for e in broker.client.lrange(INTAKE_KEY, 0, -1)] == [
        "req-evt_3"
    ]
    assert pump.step(broker) == 1


def test_one_pump_at_a_time(broker):
    """While one process's pump holds the lease, another process's pump moves nothing."""
    holder, other = IntakePump(), IntakePump()
    assert holder.step(broker) == 0  # takes the lease on an empty intake
    _accept(broker.client, "evt_1")
    assert other.step(broker) is None
    assert broker.client.llen(INTAKE_KEY) == 1
    assert holder.step(broker) == 1


def test_a_pump_that_lost_its_lease_trims_nothing(broker):
    """A pump paused past its lease while enqueueing (another pump took over meanwhile) leaves
    the intake as it found it: the new holder enqueues those entries again, and the store's
    unique event id makes the second delivery a no-op."""
    _accept(broker.client, "evt_1", "evt_2")

    def paused_past_the_lease(_broker, _envelopes: Sequence[Envelope]) -> None:
        broker.client.set(LEASE_KEY, "another-pump", px=5_000)

    assert IntakePump(enqueue=paused_past_the_lease).step(broker) is None
    assert broker.client.llen(INTAKE_KEY) == 2


def test_an_enqueue_that_fails_leaves_the_entries_for_the_next_step(broker):
    """Dramatiq refusing the messages removes nothing from the intake."""
    _accept(broker.client, "evt_1", "evt_2")

    def refused(_broker, _envelopes: Sequence[Envelope]) -> None:
        raise redis.ConnectionError("Redis went away")

    with pytest.raises(redis.ConnectionError):
        IntakePump(enqueue=refused).step(broker)
    assert broker.client.llen(INTAKE_KEY) == 2
    assert IntakePump().step(broker) is None  # the failed pump still holds the lease
    broker.client.delete(LEASE_KEY)
    assert IntakePump().step(broker) == 2


def test_the_pump_survives_redis_losing_its_script_cache(broker):
    """After SCRIPT FLUSH (a Redis restart does the same) the pump still moves entries."""
    pump = IntakePump()
    _accept(broker.client, "evt_1")
    assert pump.step(broker) == 1
    broker.client.script_flush()
    _accept(broker.client, "evt_2")
    assert pump.step(broker) == 1
    assert len(_on_dramatiq(broker)) == 2


def test_a_worker_killed_mid_pump_loses_nothing(tmp_path, redis_url):
    """SIGKILL a real worker while its pump has enqueued part of a chunk and not trimmed it
    (Redis paused under it, so the moment is certain): a new worker takes the lease over once
    it lapses, enqueues that chunk again, and every accepted event is processed exactly once."""
    database_url = f"sqlite:///{tmp_path / 'billing-ops.db'}"
    upgrade_database(make_engine(database_url), tmp_path)
    client = redis.Redis.from_url(redis_url)
    event_ids = [f"evt_pump_{n}" for n in range(2_000)]
    _accept(client, *event_ids)
    env = dict(os.environ, REDIS_URL=redis_url, DATABASE_URL=database_url,
               STRIPE_WEBHOOK_SECRET=SECRET, BILLING_OPS_DATA_DIR=str(tmp_path))  # fmt: skip

    def start_worker() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "dramatiq", "worker.entrypoint", "--processes", "1",
             "--threads", "2"],
            env=env, start_new_session=True, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def on_dramatiq() -> int:
        return int(client.hlen(f"dramatiq:{EVENTS_QUEUE}.msgs"))

    def enqueued_and_still_on_the_intake() -> set[str]:
        """Event ids both on Dramatiq and on the intake: a chunk enqueued, not trimmed."""
        intake = {Envelope.decode(e).body for e in client.lrange(INTAKE_KEY, 0, -1)}
        queued = [dramatiq.Message.decode(m) for m in client.hvals(f"dramatiq:{EVENTS_QUEUE}.msgs")]
        bodies = {entry[0] for m in queued for entry in m.args[0]}
        return bodies & intake

    worker = start_worker()
    try:
        deadline = time.monotonic() + 60
        while True:  # a step lasts milliseconds: poll without pausing, then freeze Redis
            assert time.monotonic() < deadline, "the pump never started"
            if not on_dramatiq():
                continue
            client.execute_command("CLIENT", "PAUSE", 2_000, "WRITE")
            if enqueued_and_still_on_the_intake():  # a chunk enqueued, not trimmed
                break
            client.execute_command("CLIENT", "UNPAUSE")
            assert client.llen(INTAKE_KEY) > 0, "the intake drained before a chunk was caught"
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        client.execute_command("CLIENT", "UNPAUSE")
        worker = start_worker()
        wait_for(lambda: processed(database_url) == len(event_ids), 120, "every event processed")
    finally:
        client.execute_command("CLIENT", "UNPAUSE")
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    assert client.llen(INTAKE_KEY) == 0
    engine = make_engine(database_url)
    with engine.connect() as connection:
        stored = connection.scalars(select(EventRow.id)).all()
    assert sorted(stored) == sorted(event_ids)


def processed(database_url: str) -> int:
    """Events the store has processed."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(
                connection.scalar(select(func.count()).where(EventRow.status == "processed")) or 0
            )
    finally:
        engine.dispose()
