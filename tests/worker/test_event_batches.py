"""``process_events``: a batch from the intake in one transaction, exactly the effects of one
event at a time, and a failed batch handed back to the single-event path event by event."""

from __future__ import annotations

import dataclasses

import dramatiq
import pytest
from sqlalchemy import text

from tests.support import FIXTURES, duplicate_subscription_story
from worker import actors
from worker.broker import EVENTS_QUEUE, PROCESS_EVENT_ACTOR
from worker.cases import list_cases
from worker.store import events as event_log

ARRIVED_MS = 1_764_000_000_000


def _entries(bodies: list[str]) -> list[list[object]]:
    """A batch message's argument: (body, arrival ms, request id) per event."""
    return [[body, ARRIVED_MS + n, f"req-{n}"] for n, body in enumerate(bodies)]


def _queued(runtime: actors.Runtime) -> list[dramatiq.Message]:
    broker = runtime.broker
    ids = broker.client.lrange(f"{broker.namespace}:{EVENTS_QUEUE}", 0, -1)
    encoded = broker.client.hmget(f"{broker.namespace}:{EVENTS_QUEUE}.msgs", ids) if ids else []
    return [dramatiq.Message.decode(raw) for raw in encoded]


@pytest.fixture
def runtime(settings):
    rt = actors.setup(settings)
    yield rt
    rt.engine.dispose()


def test_a_batch_has_the_effects_of_its_events_one_by_one(runtime):
    """A customer and two subscriptions to the same product in one batch, the second one
    delivered twice: three events processed, one duplicate, one duplicate-subscription case."""
    story = duplicate_subscription_story()
    actors.process_events(_entries([*story, story[2]]))
    processed = event_log.list_events(runtime.engine, event_log.PROCESSED)
    assert sorted(e.id for e in processed) == ["evt_1", "evt_2", "evt_3"]
    cases = list_cases(runtime.engine)
    assert [(c["kind"], c["subjects"][0]) for c in cases] == [("duplicate_subscription", "sub_2")]
    assert _queued(runtime) == []  # nothing fell back to the single path


def test_a_batch_updates_what_an_earlier_batch_stored(runtime):
    """A failed renewal in two batches: the second updates the subscription and the invoice
    the first stored (their rows read up front, ``projection.preload_rows``), in its own
    transaction without falling back to one event at a time, and opens the one case."""
    files = sorted((FIXTURES / "scenarios" / "failed_renewal").glob("0*.json"))
    bodies = [path.read_text() for path in files]
    actors.process_events(_entries(bodies[:4]))
    actors.process_events(_entries(bodies[4:]))
    assert _queued(runtime) == []  # no batch failed over to the single path
    assert len(event_log.list_events(runtime.engine, event_log.PROCESSED)) == len(bodies)
    cases = list_cases(runtime.engine)
    assert [(c["kind"], c["status"]) for c in cases] == [("failed_renewal", "open")]


def test_a_batch_redelivered_is_a_no_op(runtime):
    """The same batch twice (Dramatiq redelivers a message its worker did not acknowledge):
    the second run finds every event processed and changes nothing."""
    entries = _entries(duplicate_subscription_story())
    actors.process_events(entries)
    before = list_cases(runtime.engine)
    actors.process_events(entries)
    assert list_cases(runtime.engine) == before
    assert len(event_log.list_events(runtime.engine, event_log.PROCESSED)) == 3


#: A trigger that refuses to mark ``evt_2`` processed, in each store's dialect.
_REFUSE_EVT_2 = {
    "sqlite": [
        "CREATE TRIGGER refuse_evt_2 BEFORE UPDATE ON events "
        "WHEN NEW.id = 'evt_2' AND NEW.status = 'processed' "
        "BEGIN SELECT RAISE(ABORT, 'refused'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_evt_2() RETURNS trigger AS $$ BEGIN "
        "IF NEW.id = 'evt_2' AND NEW.status = 'processed' THEN RAISE EXCEPTION 'refused'; "
        "END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER refuse_evt_2 BEFORE UPDATE ON events "
        "FOR EACH ROW EXECUTE FUNCTION refuse_evt_2()",
    ],
}


def test_a_failed_batch_goes_back_event_by_event(runtime, settings):
    """The store refuses one event of the batch (a trigger here): the whole transaction rolls
    back, nothing of the batch is processed, and each of its events is back on the queue as a
    ``process_event`` message of its own, in order, with its arrival and request id, for the
    single path's retries, failure accounting and alerts."""
    with runtime.engine.begin() as connection:
        for statement in _REFUSE_EVT_2[runtime.engine.dialect.name]:
            connection.execute(text(statement))
    story = duplicate_subscription_story()
    actors.process_events(_entries(story))
    assert event_log.list_events(runtime.engine, event_log.PROCESSED) == []
    assert list_cases(runtime.engine) == []
    messages = _queued(runtime)
    assert [m.actor_name for m in messages] == [PROCESS_EVENT_ACTOR] * 3
    assert [m.args[0] for m in messages] == story
    assert [m.options["arrived_ms"] for m in messages] == [ARRIVED_MS + n for n in range(3)]
    assert [m.options["request_id"] for m in messages] == ["req-0", "req-1", "req-2"]


def test_a_batch_plans_each_notification_once(runtime, settings):
    """A batch plans the notifications its events call for, as the single path does: here the
    duplicate case's Slack alert, once, even with the event delivered twice in the batch."""
    runtime = actors.setup(dataclasses.replace(settings, slack_webhook_url="http://127.0.0.1:9/"))
    story = duplicate_subscription_story()
    actors.process_events(_entries([*story, story[2]]))
    with runtime.engine.connect() as connection:
        rows = connection.execute(text("SELECT channel, status FROM outbox")).all()
    assert [tuple(r) for r in rows] == [("slack", "pending")]
