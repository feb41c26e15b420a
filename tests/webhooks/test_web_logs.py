"""The web process logs one JSON format, with no query string, email or card in it."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from tests.support import sign
from tests.webhooks.conftest import WebProcess


def _lines(web_process: WebProcess) -> list[str]:
    return [line for line in web_process.log.read_text(errors="replace").splitlines() if line]


def _wait_for_line(web_process: WebProcess, predicate, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in _lines(web_process):
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if predicate(doc):
                return doc
        time.sleep(0.1)
    raise AssertionError("no such log line:\n" + "\n".join(_lines(web_process)[-20:]))


def test_access_lines_are_json_without_query_strings(web_process: WebProcess):
    """``/api/lookup?q=<email>&token=…`` is logged as its path, status and request id only."""
    request = urllib.request.Request(
        web_process.url + "/api/lookup?q=jane.doe%40example.com&token=s3cret-token",
        headers={"X-Request-Id": "req-lookup-1"},
    )
    try:
        urllib.request.urlopen(request, timeout=5)
    except urllib.error.HTTPError as error:
        assert error.headers["X-Request-Id"] == "req-lookup-1"
    line = _wait_for_line(
        web_process,
        lambda doc: doc.get("event") == "http_request" and doc.get("path") == "/api/lookup",
    )
    assert line["request_id"] == "req-lookup-1"
    assert line["method"] == "GET" and line["status"] in (401, 403, "401", "403")
    log = web_process.log.read_text()
    assert "jane.doe" not in log and "s3cret-token" not in log and "q=" not in log


def test_every_line_of_the_web_process_is_json(web_process: WebProcess):
    """gunicorn's own lines (start, workers) and the app's share one JSON format."""
    body = json.dumps(
        {
            "id": "evt_weblog",
            "object": "event",
            "type": "customer.created",
            "created": int(time.time()),
            "data": {"object": {"id": "cus_1", "email": "jane.doe@example.com"}},
        }
    )
    request = urllib.request.Request(
        web_process.url + "/webhooks/stripe",
        data=body.encode(),
        headers={"Stripe-Signature": sign(body), "Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=5).close()
    _wait_for_line(web_process, lambda doc: doc.get("event") == "webhook_accepted")
    _wait_for_line(web_process, lambda doc: doc.get("logger") == "gunicorn.error")
    for line in _lines(web_process):
        doc = json.loads(line)
        assert {"event", "level", "timestamp"} <= doc.keys(), line
