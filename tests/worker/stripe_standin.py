"""A local stand-in for the Stripe endpoints localstripe lacks (the lists ``/v1/disputes`` and
``/v1/prices``, and ``POST /v1/billing_portal/sessions``): it serves Stripe-shaped list pages
of the objects a test gives it, creates portal sessions (shaped as docs.stripe.com/api/
customer_portal/sessions/create shows them, one per idempotency key, as Stripe would), and
passes every other request through to localstripe unchanged. It can also answer a restricted key's
403 for one path, worded as Stripe words it, or a few 429s (rate limited)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SERVED = ("/v1/disputes", "/v1/prices")
PORTAL_SESSIONS = "/v1/billing_portal/sessions"


@dataclass
class StandIn:
    upstream: str
    url: str = ""
    objects: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {path: [] for path in SERVED}
    )
    denied: dict[str, str] = field(default_factory=dict)  # path -> missing permission
    throttled: dict[str, int] = field(default_factory=dict)  # path -> 429s still to answer
    #: Portal sessions created, by idempotency key (a repeated key gets the same session).
    portal_sessions: dict[str, dict[str, Any]] = field(default_factory=dict)


def _portal_session(standin: StandIn, form: dict[str, list[str]], key: str) -> dict[str, Any]:
    if key and key in standin.portal_sessions:
        return standin.portal_sessions[key]
    number = len(standin.portal_sessions) + 1
    session = {
        "id": f"bps_standin_{number}",
        "object": "billing_portal.session",
        "customer": form.get("customer", [""])[0],
        "livemode": False,
        "return_url": form.get("return_url", [None])[0],
        "url": f"{standin.url}/p/session/test_standin_{number}",
    }
    standin.portal_sessions[key or f"no-key-{number}"] = session
    return session


def _page(items: list[dict[str, Any]], query: dict[str, list[str]], path: str) -> dict[str, Any]:
    """Newest first, ``created[gt]``, ``starting_after`` and ``limit``, as Stripe lists."""
    rows = sorted(items, key=lambda o: (o["created"], o["id"]), reverse=True)
    if "created[gt]" in query:
        rows = [o for o in rows if o["created"] > int(query["created[gt]"][0])]
    if "starting_after" in query:
        ids = [o["id"] for o in rows]
        rows = rows[ids.index(query["starting_after"][0]) + 1 :]
    limit = int(query.get("limit", ["10"])[0])
    return {"object": "list", "url": path, "data": rows[:limit], "has_more": len(rows) > limit}


def _handler(standin: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _serve(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            if parts.path in standin.denied:
                message = (
                    "The provided key 'rk_test_***' does not have the required permissions for "
                    f"this endpoint on account 'acct_1'. Having the '{standin.denied[parts.path]}'"
                    " permission would allow this request to continue."
                )
                error = {"error": {"type": "invalid_request_error", "message": message}}
                self._send(403, json.dumps(error).encode())
                return
            if standin.throttled.get(parts.path):
                standin.throttled[parts.path] -= 1
                error = {"error": {"type": "invalid_request_error", "code": "rate_limit"}}
                self._send(429, json.dumps(error).encode())
                return
            if self.command == "POST" and parts.path == PORTAL_SESSIONS:
                length = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                if not form.get("customer"):
                    error = {"error": {"type": "invalid_request_error", "param": "customer"}}
                    self._send(400, json.dumps(error).encode())
                    return
                key = self.headers.get("Idempotency-Key", "")
                self._send(200, json.dumps(_portal_session(standin, form, key)).encode())
                return
            if self.command == "GET" and parts.path in SERVED:
                page = _page(
                    standin.objects[parts.path], urllib.parse.parse_qs(parts.query), parts.path
                )
                self._send(200, json.dumps(page).encode())
                return
            self._forward()

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {
                k: v
                for k, v in self.headers.items()
                if k.lower() in ("authorization", "content-type", "stripe-version")
            }
            request = urllib.request.Request(
                standin.upstream + self.path, data=body, headers=headers, method=self.command
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    self._send(response.status, response.read())
            except urllib.error.HTTPError as error:
                self._send(error.code, error.read())

        do_GET = do_POST = do_DELETE = _serve

    return Handler


@contextmanager
def stripe_standin(upstream: str) -> Iterator[StandIn]:
    """The stand-in on a free loopback port, for the duration of the block."""
    standin = StandIn(upstream=upstream)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(standin))
    standin.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield standin
    finally:
        server.shutdown()
        server.server_close()
