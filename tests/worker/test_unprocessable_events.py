"""No acknowledged delivery vanishes: what a worker cannot process is kept as a failed row
(raw body included) and listed by ``events failed``, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from tests.support import event_body
from worker.cli import main
from worker.pipeline import process_event
from worker.store import events as event_log

#: The signed example from the hardening issue: no ``created``.
NO_CREATED = (
    '{"id":"evt_x","object":"event","type":"customer.created","data":{"object":{"id":"cus_1"}}}'
)


def _envelope(**fields) -> str:
    event = json.loads(event_body())
    event.update(fields)
    return json.dumps(event)


def _failed(engine) -> dict[str, event_log.EventSummary]:
    return {e.id: e for e in event_log.list_events(engine, event_log.FAILED)}


@pytest.mark.parametrize(
    "body",
    [
        NO_CREATED,
        _envelope(created="1764000000"),
        _envelope(data={"object": {"id": "cus_1"}, "previous_attributes": "x"}),
        _envelope(created=2**63),
        _envelope(api_version="v" * 33),
        _envelope(type="t" * 101),
    ],
    ids=["no_created", "created_text", "previous_not_obj", "created_2_63", "api_version", "type"],
)
def test_unprocessable_event_with_a_storable_id_is_kept_failed_under_that_id(engine, body):
    """The worker keeps what it cannot process as a failed row, under the event's own id."""
    outcome = process_event(engine, body)
    assert outcome.status == "malformed"
    failed = _failed(engine)
    event_id = json.loads(body)["id"]
    assert list(failed) == [event_id]
    assert failed[event_id].last_error.startswith("MalformedEventError:")
    assert event_log.load_payload(engine, event_id) == body


@pytest.mark.parametrize(
    "body",
    [
        _envelope(id="evt_" + "x" * 300),
        _envelope(id="evt_\u0000nul"),
        _envelope(id="evt_\ud800"),
        "[" * 5000 + "]" * 5000,
        "not json at all",
    ],
    ids=["id_300", "id_nul", "id_surrogate", "nested", "not_json"],
)
def test_event_whose_id_cannot_be_stored_is_kept_under_a_hash_of_its_body(engine, body):
    """No storable id: the failed row is keyed by a hash of the raw body, which is kept."""
    outcome = process_event(engine, body)
    assert outcome.status == "malformed"
    assert outcome.event_id.startswith(event_log.UNPARSED_PREFIX)
    assert list(_failed(engine)) == [outcome.event_id]
    assert event_log.load_payload(engine, outcome.event_id) == body
    assert process_event(engine, body).event_id == outcome.event_id  # a redelivery: same row


def test_event_at_the_column_limits_is_processed(engine):
    """255-character id, 100-character type, 32-character api_version: stored and processed."""
    body = _envelope(id="evt_" + "x" * 251, type="customer." + "x" * 91, api_version="v" * 32)
    assert process_event(engine, body).status == "processed"


def test_final_failure_before_the_first_insert_is_kept(engine):
    """An event that failed every attempt before it had a row is stored failed, not lost."""
    body = event_body(event_id="evt_never_inserted")
    event_log.record_failure(
        engine,
        "evt_never_inserted",
        "OperationalError: database was down",
        final=True,
        now=datetime.now(UTC),
        payload=body,
    )
    failed = _failed(engine)
    assert failed["evt_never_inserted"].last_error == "OperationalError: database was down"
    assert failed["evt_never_inserted"].type == "customer.created"
    assert event_log.load_payload(engine, "evt_never_inserted") == body


def test_events_failed_lists_an_event_the_worker_could_not_process(
    engine, database_url, tmp_path, monkeypatch
):
    """``billing-ops events failed --json`` shows the malformed delivery and why."""
    process_event(engine, NO_CREATED)
    monkeypatch.setenv("BILLING_OPS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DATABASE_URL", database_url)
    (tmp_path / "data").mkdir(exist_ok=True)
    result = CliRunner().invoke(main, ["events", "failed", "--json"], catch_exceptions=False)
    listed = json.loads(result.output)
    assert [e["id"] for e in listed] == ["evt_x"]
    assert "created" in listed[0]["last_error"]
