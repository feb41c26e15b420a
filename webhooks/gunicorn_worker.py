"""The gunicorn worker class of the web process: gevent, answering its own errors in JSON.

gunicorn answers requests it cannot parse (414, 431, 400, …) itself, before the app sees them,
with an HTML page. The service's contract is ``{"error": code}`` for every answer, so this
worker writes JSON instead. ``handle_error`` is the base worker's hook for that; gunicorn's
``worker_class`` setting accepts such a subclass by its dotted path.

Imported by gunicorn's master before it forks (gevent patches only in the worker): the standard
library and gunicorn only.
"""

from __future__ import annotations

import json
from ssl import SSLError
from typing import Any

from gunicorn.http import errors as http_errors
from gunicorn.workers.ggevent import GeventWorker

#: gunicorn's parse errors that are not a plain 400, with the status gunicorn itself uses.
_STATUS_BY_ERROR: tuple[tuple[type[BaseException], int], ...] = (
    (http_errors.LimitRequestLine, 414),
    (http_errors.LimitRequestHeaders, 431),
    (http_errors.UnsupportedTransferCoding, 501),
    (http_errors.ExpectationFailed, 417),
    (http_errors.ForbiddenProxyRequest, 403),
    (SSLError, 403),
)
#: The error code and reason phrase of each status this worker answers.
_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "Bad Request"),
    403: ("forbidden", "Forbidden"),
    414: ("uri_too_long", "URI Too Long"),
    417: ("expectation_failed", "Expectation Failed"),
    431: ("request_header_fields_too_large", "Request Header Fields Too Large"),
    500: ("internal_server_error", "Internal Server Error"),
    501: ("not_implemented", "Not Implemented"),
}
#: Errors about the application's own response are the server's fault.
_SERVER_SIDE = (
    http_errors.InvalidResponseHeader,
    http_errors.InvalidResponseHeaderName,
    http_errors.ConfigurationProblem,
)


def error_status(error: BaseException) -> int:
    """The HTTP status for an error gunicorn caught while reading or answering a request."""
    for kind, status in _STATUS_BY_ERROR:
        if isinstance(error, kind):
            return status
    if isinstance(error, http_errors.ParseException) and not isinstance(error, _SERVER_SIDE):
        return 400
    return 500


def error_response(status: int) -> bytes:
    """A complete ``Connection: close`` HTTP/1.1 answer with the JSON error body."""
    code, reason = _ERRORS[status]
    body = json.dumps({"error": code}).encode() + b"\n"
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class JsonGeventWorker(GeventWorker):
    """gunicorn's gevent worker whose own error answers are JSON instead of HTML."""

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        status = error_status(exc)
        if status == 500:
            self.log.exception("web_request_failed")
        else:
            self.log.warning("web_request_refused status=%s error=%s", status, type(exc).__name__)
        try:
            client.sendall(error_response(status))
        except OSError:
            self.log.debug("web_error_answer_not_sent")
