"""structlog set-up: configured once per process, JSON off a terminal, secrets never logged."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

from worker.pii import REDACTED, scrub_text

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


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, Mapping):
        return {key: _scrub_item(str(key), item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return value


#: Keys billing-ops itself fills with ids, levels and times: nothing in them to scrub.
SAFE_KEYS = frozenset(
    {"event", "level", "timestamp", "event_id", "event_type", "request_id", "message_id", "actor"}
)


def _scrub_item(key: str, value: Any) -> Any:
    if key in SAFE_KEYS and isinstance(value, str) and "@" not in value:
        return value
    if key.lower().replace("-", "_") in SECRET_KEYS and value not in (None, ""):
        return REDACTED
    return _scrub(value)


def redact(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping:
    """structlog processor: no secret, signature, card number or raw email reaches a log line."""
    for key in list(event_dict):
        event_dict[key] = _scrub_item(key, event_dict[key])
    return event_dict


def configure_logging(log_format: str = "auto", level: int = logging.INFO) -> None:
    """Configure structlog (and stdlib logging through it) for this process."""
    as_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact,
    ]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s %(message)s")
