"""The web process as ``billing-ops web`` runs it (real gunicorn, real sockets): slow clients
cost nothing, and the answers gunicorn makes itself are JSON like the app's."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.support import event_body, sign

SLOW_CLIENTS = 50
#: The poll bound: a valid webhook must be answered within this while the slow clients hang on.
ANSWER_BOUND_SECONDS = 1.0
SLOW_REQUEST = b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


@pytest.fixture
def slow_clients(web_server: str) -> Iterator[list[socket.socket]]:
    """50 connections that each send one more byte of a request head every half second."""
    sockets = [
        socket.create_connection(_address(web_server), timeout=5) for _ in range(SLOW_CLIENTS)
    ]
    stop = threading.Event()
    sent = {"bytes": 0}

    def trickle() -> None:
        while not stop.is_set():
            index = sent["bytes"] % len(SLOW_REQUEST)
            for sock in sockets:
                with contextlib.suppress(OSError):  # the server dropped it: fine, it was hostile
                    sock.send(SLOW_REQUEST[index : index + 1])
            sent["bytes"] += 1
            stop.wait(0.5)

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    while sent["bytes"] < 2:  # every slow client has started its request
        time.sleep(0.01)
    yield sockets
    stop.set()
    thread.join()
    for sock in sockets:
        sock.close()


def _signed_post(body: str, signature: str) -> bytes:
    raw = body.encode()
    return (
        b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Stripe-Signature: {signature}\r\nContent-Length: {len(raw)}\r\n".encode()
        + b"Connection: close\r\n\r\n"
        + raw
    )


def _exchange_within(url: str, request: bytes, bound: float) -> bytes:
    """The raw HTTP answer to ``request``, or a failure if it is not complete within ``bound``.
    The request is sent from a thread: a server may answer (and close) before reading it all."""
    deadline = time.monotonic() + bound
    chunks: list[bytes] = []
    with socket.create_connection(_address(url), timeout=bound) as sock:
        sender = threading.Thread(target=_send_quietly, args=(sock, request), daemon=True)
        sender.start()
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:  # closed on us after answering: what came is the answer
                return b"".join(chunks)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    pytest.fail(f"no complete answer within {bound} s: {b''.join(chunks)[:200]!r}")


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):
        sock.sendall(data)


def test_valid_webhook_is_answered_while_fifty_slow_clients_hang_on(web_server, slow_clients):
    """50 unauthenticated connections trickling bytes do not hold up a signed webhook."""
    body = event_body()
    answer = _exchange_within(web_server, _signed_post(body, sign(body)), ANSWER_BOUND_SECONDS)
    assert answer.startswith(b"HTTP/1.1 200")
    assert b'"received":true' in answer


def _json_error(answer: bytes) -> tuple[int, str, dict[str, str]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    content_type = next(
        line.split(b":", 1)[1].strip().decode()
        for line in head.split(b"\r\n")[1:]
        if line.lower().startswith(b"content-type:")
    )
    return status, content_type, json.loads(body)


def test_overlong_request_line_is_answered_414_in_json(web_server):
    """gunicorn's own 414 (request line over 4094 bytes) is JSON, not an HTML page."""
    request = b"GET /api/lookup?q=" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    status, content_type, doc = _json_error(_exchange_within(web_server, request, 10))
    assert (status, content_type, doc) == (414, "application/json", {"error": "uri_too_long"})


def test_too_many_header_fields_are_answered_431_in_json(web_server):
    """gunicorn's own 431 (over 100 header fields) is JSON, not an HTML page."""
    fields = b"".join(b"X-F%d: v\r\n" % i for i in range(150))
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n"
    status, content_type, doc = _json_error(_exchange_within(web_server, request, 10))
    assert status == 431
    assert (content_type, doc) == ("application/json", {"error": "request_header_fields_too_large"})


def test_garbage_request_line_is_answered_400_in_json(web_server):
    """A request gunicorn cannot parse at all gets a JSON 400."""
    status, content_type, doc = _json_error(
        _exchange_within(web_server, b"\x00\x01 nonsense\r\n\r\n", 10)
    )
    assert (status, content_type, doc) == (400, "application/json", {"error": "bad_request"})


def _chunked_post(body: bytes, chunk_size: int = 64 * 1024) -> bytes:
    chunks = b"".join(
        b"%x\r\n" % len(body[i : i + chunk_size]) + body[i : i + chunk_size] + b"\r\n"
        for i in range(0, len(body), chunk_size)
    )
    return (
        b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Stripe-Signature: t=1,v1=00\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n" + chunks + b"0\r\n\r\n"
    )


def test_chunked_body_over_the_cap_is_413(web_server):
    """A chunked body (no Content-Length) past 1 MiB is refused as too large: 413, not 400."""
    answer = _exchange_within(web_server, _chunked_post(b"x" * (1024 * 1024 + 1)), 30)
    status, content_type, doc = _json_error(answer)
    assert (status, content_type, doc) == (413, "application/json", {"error": "payload_too_large"})


def test_chunked_body_under_the_cap_is_read(web_server):
    """A chunked signed event under the cap is verified and accepted like any other."""
    body = event_body(event_id="evt_chunked")
    request = _chunked_post(body.encode()).replace(b"t=1,v1=00", sign(body).encode())
    assert _exchange_within(web_server, request, 10).startswith(b"HTTP/1.1 200")
