"""POST /webhooks/stripe: verify, reject, enqueue, ack — per the interface contract."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time

import pytest
from freezegun import freeze_time

from tests.support import SECRET, event_body, free_port, sign
from webhooks import create_app
from worker.embedded_redis import find_redis_server
from worker.intake import INTAKE_KEY, Envelope

URL = "/webhooks/stripe"


def post(client, body, signature):
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return client.post(URL, data=body, headers=headers)


def test_signed_event_is_enqueued_and_acknowledged(client, queued):
    """A correctly signed event is put on the queue, then answered 200."""
    body = event_body()
    response = post(client, body, sign(body))
    assert response.status_code == 200
    assert response.get_json() == {"received": True, "duplicate": False}
    assert queued() == 1


def test_enqueued_message_carries_the_raw_body(client, redis_url):
    """The worker receives the exact bytes Stripe signed, not a re-serialisation, with the
    web request's id and the time the edge accepted it."""
    import redis as redis_lib

    body = event_body().replace(",", ", ")
    before_ms = int(time.time() * 1000)
    response = post(client, body, sign(body))
    [stored] = redis_lib.Redis.from_url(redis_url).lrange(INTAKE_KEY, 0, -1)
    envelope = Envelope.decode(stored)
    assert envelope.body == body
    assert envelope.request_id == response.headers["X-Request-Id"]
    assert before_ms <= envelope.arrived_ms <= int(time.time() * 1000)


def test_tampered_body_is_rejected(client, queued):
    """A body changed after signing fails verification and is not enqueued."""
    body = event_body()
    response = post(client, body.replace("jane", "john"), sign(body))
    assert response.status_code == 400
    assert response.get_json() == {"error": "invalid_signature"}
    assert queued() == 0


def test_wrong_secret_is_rejected(client, queued):
    """A signature made with another secret is refused."""
    body = event_body()
    response = post(client, body, sign(body, secret="whsec_someone_else"))
    assert response.get_json() == {"error": "invalid_signature"}
    assert queued() == 0


def test_rotated_secret_is_accepted(edge_settings, queued):
    """During a rotation an event signed with the old secret still verifies."""
    from dataclasses import replace

    app = create_app(replace(edge_settings, webhook_secrets=("whsec_new_one", SECRET)))
    body = event_body()
    assert post(app.test_client(), body, sign(body)).status_code == 200
    assert queued() == 1


def test_any_of_several_v1_signatures_may_match(client):
    """Stripe may send several v1 entries; one matching is enough."""
    body = event_body()
    good = sign(body)
    ts, v1 = good.split(",")
    header = f"{ts},v1={'0' * 64},{v1},v0=abc"
    assert post(client, body, header).status_code == 200


def test_missing_signature_header_is_rejected(client, queued):
    """No Stripe-Signature header → missing_signature."""
    response = post(client, event_body(), None)
    assert response.status_code == 400
    assert response.get_json() == {"error": "missing_signature"}
    assert queued() == 0


def test_garbage_signature_header_is_rejected(client):
    """A header that is not t=…,v1=… is an invalid signature, not a crash."""
    response = post(client, event_body(), "nonsense")
    assert response.get_json() == {"error": "invalid_signature"}


def test_stale_timestamp_is_rejected(client, queued):
    """A signature older than 300 s is refused even though the HMAC is right."""
    body = event_body()
    with freeze_time("2026-11-25 12:00:00"):
        header = sign(body, timestamp=int(time.time()) - 301)
        response = post(client, body, header)
    assert response.status_code == 400
    assert response.get_json() == {"error": "timestamp_out_of_tolerance"}
    assert queued() == 0


def test_timestamp_just_inside_tolerance_is_accepted(client):
    """299 s old is still inside the window."""
    body = event_body()
    with freeze_time("2026-11-25 12:00:00"):
        header = sign(body, timestamp=int(time.time()) - 299)
        assert post(client, body, header).status_code == 200


def test_future_timestamp_is_rejected(client, queued):
    """A timestamp more than 300 s ahead is refused too."""
    body = event_body()
    with freeze_time("2026-11-25 12:00:00"):
        header = sign(body, timestamp=int(time.time()) + 301)
        response = post(client, body, header)
    assert response.get_json() == {"error": "timestamp_out_of_tolerance"}
    assert queued() == 0


def test_malformed_json_is_rejected(client, queued):
    """A signed body that is not JSON → malformed_payload."""
    body = '{"id": "evt_1", "object": "event",'
    response = post(client, body, sign(body))
    assert response.status_code == 400
    assert response.get_json()["error"] == "malformed_payload"
    assert queued() == 0


@pytest.mark.parametrize(
    "body",
    [
        "[1, 2, 3]",
        '{"hello": "world"}',
        '{"id": "evt_1", "object": "event", "type": "x", "data": {}}',
        '{"id": 5, "object": "event", "type": "x", "data": {"object": {}}}',
    ],
)
def test_json_that_is_not_an_event_is_rejected(client, queued, body):
    """Valid JSON that is not a Stripe event object → malformed_payload."""
    response = post(client, body, sign(body))
    assert response.get_json()["error"] == "malformed_payload"
    assert queued() == 0


def test_non_utf8_body_is_rejected(client, queued):
    """Bytes that are not UTF-8 cannot be a Stripe event."""
    body = b'{"id": "\xff\xfe"}'
    response = post(client, body, sign(body))
    assert response.get_json()["error"] == "malformed_payload"
    assert queued() == 0


def test_oversize_body_is_refused_with_413(client, queued):
    """A body over the cap is refused before verification, and nothing is enqueued."""
    body = event_body(padding="x" * (70 * 1024))
    response = post(client, body, sign(body))
    assert response.status_code == 413
    assert response.get_json() == {"error": "payload_too_large"}
    assert queued() == 0


def test_oversize_declared_length_is_refused_before_reading(app):
    """Over a real socket, a Content-Length past the cap is answered 413 at once, without
    waiting for (or reading) the body."""
    import socket
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with socket.create_connection(("127.0.0.1", server.server_port), timeout=5) as sock:
            sock.sendall(
                b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nStripe-Signature: t=1,v1=00\r\n"
                b"Content-Type: application/json\r\nContent-Length: 10485760\r\n\r\n{"
            )
            chunks = []
            while chunk := sock.recv(4096):
                chunks.append(chunk)
            reply = b"".join(chunks).decode()
    finally:
        server.shutdown()
    assert reply.startswith("HTTP/1.1 413")
    assert "payload_too_large" in reply


def test_redelivery_is_flagged_duplicate_and_still_enqueued(client, queued):
    """A second delivery of the same event id is acknowledged as a duplicate hint."""
    body = event_body()
    first = post(client, body, sign(body))
    second = post(client, body, sign(body))
    assert first.get_json()["duplicate"] is False
    assert second.get_json()["duplicate"] is True
    assert queued() == 2  # the store, not the edge, decides what is a duplicate


def test_redis_unreachable_answers_503(edge_settings):
    """With nothing listening on the Redis port the edge answers 503 (how fast: see
    bench/redis_down.py)."""
    from dataclasses import replace

    port = free_port()
    app = create_app(replace(edge_settings, redis_url=f"redis://127.0.0.1:{port}/0"))
    body = event_body()
    response = post(app.test_client(), body, sign(body))
    assert response.status_code == 503
    assert response.get_json() == {"error": "queue_unavailable"}


def test_redis_stopped_mid_life_answers_503_and_keeps_nothing(edge_settings, tmp_path):
    """A Redis that goes away after start-up turns into 503 and keeps nothing of that event
    (no message, no duplicate marker: its id is nowhere in Redis); once Redis is back (its
    append-only file replayed), the accepted event is still there and Stripe's retry of the
    refused one is accepted as new."""
    from dataclasses import replace

    import redis as redis_lib

    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"

    def start_redis() -> subprocess.Popen[bytes]:
        server = subprocess.Popen(
            [str(find_redis_server()), "--port", str(port), "--save", "", "--dir", str(tmp_path),
             "--appendonly", "yes", "--appendfsync", "always"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                redis_lib.Redis.from_url(url).ping()
                return server
            except redis_lib.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    server = start_redis()
    client = create_app(replace(edge_settings, redis_url=url)).test_client()
    accepted, refused = event_body(), event_body(event_id="evt_test_2")
    try:
        assert post(client, accepted, sign(accepted)).status_code == 200
        with contextlib.suppress(redis_lib.ConnectionError):
            redis_lib.Redis.from_url(url).shutdown(nosave=True)
        server.wait(timeout=10)
        response = post(client, refused, sign(refused))
        assert response.status_code == 503
        assert response.get_json() == {"error": "queue_unavailable"}

        server = start_redis()
        queue = redis_lib.Redis.from_url(url)
        assert b"evt_test_1" in _everything(queue)  # the accepted one, replayed from the AOF
        assert b"evt_test_2" not in _everything(queue)
        assert post(client, refused, sign(refused)).get_json() == {
            "received": True,
            "duplicate": False,
        }
        assert b"evt_test_2" in _everything(queue)
    finally:
        server.kill()
        server.wait(timeout=10)


def _everything(client) -> bytes:
    """Every key and value in a Redis database, concatenated: what it holds, whatever the
    layout of the queue."""
    found = []
    for key in client.scan_iter():
        found.append(key)
        kind = client.type(key)
        if kind == b"string":
            found.append(client.get(key) or b"")
        elif kind == b"list":
            found += client.lrange(key, 0, -1)
        elif kind == b"hash":
            found += [*client.hkeys(key), *client.hvals(key)]
        elif kind == b"set":
            found += list(client.smembers(key))
        elif kind == b"zset":
            found += client.zrange(key, 0, -1)
    return b"\n".join(found)


def test_spaced_t_key_cannot_lend_a_fresh_time_to_an_old_signature(client, queued):
    """``t =<now>,t=<old>,v1=<sig at old>``: the window is checked on the signed time (old)."""
    body = event_body()
    now = int(time.time())
    old = now - 30 * 24 * 3600
    old_signature = sign(body, timestamp=old).split(",")[1]
    response = post(client, body, f"t ={now},t={old},{old_signature}")
    assert response.status_code == 400
    assert response.get_json() == {"error": "timestamp_out_of_tolerance"}
    assert queued() == 0


def test_non_numeric_spaced_t_key_is_refused_not_a_crash(client):
    """``t =abc,t=<now>,v1=…`` is answered, never a 500."""
    body = event_body()
    good = sign(body)
    response = post(client, body, f"t =abc,{good}")
    assert response.status_code in (200, 400)


@pytest.mark.parametrize(
    "header",
    [
        "t={now},t={now},{v1}",  # two timestamps: ambiguous
        "t=+{now},{v1}",  # int() would take it; Stripe never sends it
        "t= {now},{v1}",
        "t={now}",  # no signature at all
    ],
)
def test_ambiguous_or_odd_signature_headers_are_invalid(client, queued, header):
    """A header must carry exactly one t=<digits> and a v1 signature."""
    body = event_body()
    now = int(time.time())
    v1 = sign(body, timestamp=now).split(",")[1]
    response = post(client, body, header.format(now=now, v1=v1))
    assert response.get_json() == {"error": "invalid_signature"}
    assert queued() == 0


def _envelope(**fields) -> str:
    event = json.loads(event_body())
    event.update(fields)
    return json.dumps(event)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (
            '{"id":"evt_x","object":"event","type":"customer.created",'
            '"data":{"object":{"id":"cus_1"}}}',
            "created",
        ),
        (_envelope(created="1764000000"), "created"),
        (_envelope(created=True), "created"),
        (
            _envelope(data={"object": {"id": "cus_1"}, "previous_attributes": [1]}),
            "previous_attributes",
        ),
        (_envelope(created=2**63), "created"),
        (_envelope(created=2**40 * 1000), "created"),
        (_envelope(id="evt_" + "x" * 252), "id"),
        (_envelope(type="customer." + "x" * 92), "type"),
        (_envelope(api_version="2025-03-31." + "x" * 22), "api_version"),
        (_envelope(id="evt_\u0000"), "id"),
        (_envelope(id="evt_\ud800"), "id"),
        (_envelope(data={"object": {"id": "cus_" + "x" * 252}}), "data.object.id"),
    ],
)
def test_signed_event_the_worker_cannot_store_is_refused_with_a_detail(client, queued, body, named):
    """What the worker would drop or fail to insert is refused at the edge: 400 + detail."""
    response = post(client, body, sign(body))
    assert response.status_code == 400
    doc = response.get_json()
    assert doc["error"] == "malformed_payload"
    assert named in doc["detail"]
    assert queued() == 0


def test_deeply_nested_signed_json_is_malformed_not_a_crash(client, queued):
    """10,000 nested arrays (a RecursionError in json.loads) → 400, not 500."""
    body = "[" * 10_000 + "]" * 10_000
    response = post(client, body, sign(body))
    assert response.status_code == 400
    assert response.get_json() == {
        "error": "malformed_payload",
        "detail": "JSON is nested too deeply",
    }
    assert queued() == 0


def test_longest_storable_values_are_accepted(client, queued):
    """At the column limits exactly (255 / 100 / 32) the event is still taken."""
    body = _envelope(id="evt_" + "x" * 251, type="customer." + "x" * 91, api_version="v" * 32)
    assert post(client, body, sign(body)).status_code == 200
    assert queued() == 1
