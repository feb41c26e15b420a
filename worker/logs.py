"""Logging for every billing-ops process: one stream, one format, one redaction processor.

structlog events and standard-library records (Dramatiq, gunicorn, Alembic, redis-py…) go
through the same processors: context ids, level, time, redaction, a size cap. They are
rendered as JSON when stderr is not a terminal and written by one ``LineWriter`` per stream:
one whole line per write, never longer than ``MAX_LINE_BYTES``, under a lock. Below the pipe
buffer (``PIPE_BUF``, 4096 bytes on Linux) a write to a pipe is atomic, so lines from many
threads and processes never interleave, and Dramatiq's length-prefixed log pipe (4-byte
header + line) is never torn.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import threading
from collections.abc import Mapping, MutableMapping
from typing import Any, TextIO

import structlog

from worker.pii import REDACTED, scrub_capped

#: Keys whose values are secret whatever they look like.
SECRET_KEYS = frozenset(
    {
        "authorization",
        "password",
        "secret",
        "signature",
        "stripe_signature",
        "token",
        "api_key",
        "operator_token",
        "webhook_secret",
        "card_number",
        "number",
        "cvc",
    }
)
#: Keys billing-ops fills itself with a level, a time or a logger name: nothing to scrub.
TRUSTED_KEYS = frozenset({"level", "timestamp", "logger"})
#: Keys kept whole when a line must shrink to fit.
CORE_KEYS = ("event", "level", "timestamp", "logger", "request_id", "event_id", "message_id")

#: A whole line, newline included, stays under PIPE_BUF with room for Dramatiq's 4-byte frame.
MAX_LINE_BYTES = 4000
#: Longest string value kept in a log line (a traceback keeps its last ``MAX_EXCEPTION_CHARS``).
MAX_VALUE_CHARS = 1000
MAX_EXCEPTION_CHARS = 2500
#: Noisy libraries: Alembic announces its context and plugins on every start.
LOGGER_LEVELS = {"alembic": logging.WARNING, "dramatiq": logging.INFO}


def _scrub(value: Any, key: str = "") -> Any:
    if isinstance(value, str):
        if key == "exception":
            return scrub_capped(value, MAX_EXCEPTION_CHARS, keep_tail=True)
        return scrub_capped(value, MAX_VALUE_CHARS)
    if isinstance(value, Mapping):
        return {str(k): _scrub_item(str(k), item) for k, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return _scrub(repr(value))  # anything else is shown as its (scrubbed) repr


def _scrub_item(key: str, value: Any) -> Any:
    if key in TRUSTED_KEYS:
        return value
    if key.lower().replace("-", "_") in SECRET_KEYS and value not in (None, ""):
        return REDACTED
    return _scrub(value, key)


def redact(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping:
    """structlog processor: no secret, signature, card number or raw email reaches a log line,
    and no value is longer than ``MAX_VALUE_CHARS`` (a traceback: ``MAX_EXCEPTION_CHARS``)."""
    for key in list(event_dict):
        event_dict[key] = _scrub_item(key, event_dict[key])
    return event_dict


def _json(event_dict: Mapping[str, Any]) -> str:
    """One line of ASCII JSON: control and bidi characters arrive escaped, never raw."""
    return json.dumps(event_dict, default=repr, separators=(",", ":"))


def render_json_line(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> str:
    """Render as JSON that fits ``MAX_LINE_BYTES``: shorten the longest values, then keep only
    the core keys, saying how much was cut."""
    line = _json(event_dict)
    if len(line) < MAX_LINE_BYTES:  # ASCII: characters are bytes
        return line
    original = len(line)
    for limit in (400, 120):
        shrunk = {
            key: value if key in CORE_KEYS else _shorten(value, limit)
            for key, value in event_dict.items()
        }
        shrunk["log_line_cut_from"] = original
        line = _json(shrunk)
        if len(line) < MAX_LINE_BYTES:
            return line
    core = {key: _shorten(event_dict[key], 200) for key in CORE_KEYS if key in event_dict}
    core["log_line_cut_from"] = original
    return _json(core)


def _shorten(value: Any, limit: int) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else _json(value)
    return text if len(text) <= limit else text[:limit] + "…"


class LineWriter:
    """Writes whole lines to one stream: one write per line, under one lock.

    For a real file or pipe the line goes straight to the descriptor with ``os.write`` (one
    system call, atomic below ``PIPE_BUF``); other streams (Dramatiq's log pipe, a test's
    buffer) get one ``write`` of the whole line.
    """

    _instances: dict[int, LineWriter] = {}
    _instances_lock = threading.Lock()

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._lock = threading.Lock()
        self._fd = _real_fd(stream)

    @classmethod
    def for_stream(cls, stream: TextIO) -> LineWriter:
        """The one writer (and lock) of ``stream`` in this process."""
        with cls._instances_lock:
            writer = cls._instances.get(id(stream))
            if writer is None or writer.stream is not stream:
                writer = cls._instances[id(stream)] = cls(stream)
            return writer

    def write_line(self, line: str) -> None:
        data = line.rstrip("\n") + "\n"
        with self._lock:
            if self._fd is None:
                self.stream.write(data)
                self.stream.flush()
                return
            view = memoryview(data.encode("utf-8", errors="replace"))
            while view:
                view = view[os.write(self._fd, view) :]


def _real_fd(stream: TextIO) -> int | None:
    """The descriptor under a standard text stream, or None for anything else."""
    if type(stream) is not io.TextIOWrapper:
        return None
    try:
        stream.flush()
        return stream.fileno()
    except (OSError, ValueError):
        return None


class LineLogger:
    """structlog's logger: hands each rendered line to the stream's ``LineWriter``."""

    def __init__(self, writer: LineWriter) -> None:
        self._writer = writer

    def msg(self, message: str) -> None:
        self._writer.write_line(message)

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


class LineHandler(logging.Handler):
    """The root handler: standard-library records through the same processors and writer."""

    def __init__(self, writer: LineWriter, formatter: logging.Formatter) -> None:
        super().__init__()
        self.writer = writer
        self.setFormatter(formatter)
        self.addFilter(_structure_record)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.writer.write_line(self.format(record))
        except Exception:  # noqa: BLE001 - logging must never take the process down
            self.handleError(record)


def _structure_record(record: logging.LogRecord) -> bool:
    """Before formatting: a Dramatiq message in a record's arguments is named by actor and id
    (never its payload), and a gunicorn access record becomes fields without a query string."""
    args = record.args
    if record.name == "gunicorn.access" and isinstance(args, Mapping):
        record.msg, record.args = "http_request", None
        record.billing_ops_fields = _access_fields(args)
    elif isinstance(args, tuple) and any(_is_message(arg) for arg in args):
        record.args = tuple(_message_ref(arg) if _is_message(arg) else arg for arg in args)
    return True


def _is_message(value: Any) -> bool:
    return hasattr(value, "message_id") and hasattr(value, "actor_name")


def _message_ref(message: Any) -> str:
    return f"{message.actor_name}({message.message_id})"


def _access_fields(atoms: Mapping[str, Any]) -> dict[str, Any]:
    """gunicorn's documented access-log atoms, path without its query string (``U``)."""
    fields = {
        "method": atoms["m"],
        "path": atoms["U"],
        "status": int(atoms["s"]) if str(atoms["s"]).isdigit() else atoms["s"],
        "bytes": atoms["B"],
        "duration_ms": atoms["M"],
        "remote": atoms["h"],
        "request_id": atoms["{x-request-id}o"],
    }
    return {key: value for key, value in fields.items() if value not in (None, "-")}


def _add_record_fields(_logger: Any, _method: str, event_dict: MutableMapping) -> MutableMapping:
    record = event_dict.get("_record")
    fields = getattr(record, "billing_ops_fields", None)
    if fields:
        for key, value in fields.items():
            event_dict.setdefault(key, value)
    return event_dict


def _add_logger_name(_logger: Any, _method: str, event_dict: MutableMapping) -> MutableMapping:
    record = event_dict.get("_record")
    if record is not None:
        event_dict["logger"] = record.name
    return event_dict


def wants_json(log_format: str, stream: TextIO | None = None) -> bool:
    """``json``, ``console``, or ``auto``: JSON unless the stream is a terminal."""
    stream = stream or sys.stderr
    return log_format == "json" or (log_format == "auto" and not stream.isatty())


def _processors(log_format: str, stream: TextIO) -> tuple[list[Any], list[Any]]:
    """What both paths share before rendering, and the redaction-and-render tail."""
    renderer: Any = (
        render_json_line
        if wants_json(log_format, stream)
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    context = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    tail = [structlog.processors.format_exc_info, redact, renderer]
    return context, tail


def stdlib_handler(log_format: str | None = None, stream: TextIO | None = None) -> LineHandler:
    """A handler rendering standard-library records like structlog's; gunicorn's
    ``logconfig_dict`` builds it in the master, which has no settings: ``log_format`` then
    comes from ``BILLING_OPS_LOG_FORMAT`` (validated by the ``web`` / ``serve`` command)."""
    stream = stream or sys.stderr
    log_format = log_format or os.environ.get("BILLING_OPS_LOG_FORMAT") or "auto"
    context, tail = _processors(log_format, stream)
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*context, _add_logger_name, _add_record_fields],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
    )
    return LineHandler(LineWriter.for_stream(stream), formatter)


def configure_logging(
    log_format: str = "auto", level: int = logging.INFO, stream: TextIO | None = None
) -> None:
    """Configure structlog and the standard library's root logger for this process."""
    stream = stream or sys.stderr
    writer = LineWriter.for_stream(stream)
    context, tail = _processors(log_format, stream)
    structlog.configure(
        processors=[*context, *tail],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=lambda *_args: LineLogger(writer),
        cache_logger_on_first_use=True,
    )
    root = logging.getLogger()
    for handler in list(root.handlers):
        if not _is_test_capture(handler):
            root.removeHandler(handler)
    root.addHandler(stdlib_handler(log_format, stream))
    root.setLevel(logging.WARNING)
    for name, logger_level in LOGGER_LEVELS.items():
        logging.getLogger(name).setLevel(logger_level)


def _is_test_capture(handler: logging.Handler) -> bool:
    """pytest's capture handlers stay (its ``caplog`` reads records from them)."""
    return type(handler).__module__.startswith("_pytest")
