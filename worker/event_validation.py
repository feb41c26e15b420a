"""One validation of a Stripe event body, shared by the webhook edge and the worker.

The edge answers 200 only for what a worker can store and process, so both call
``validate_event``: JSON (not nested past Python's recursion limit), ``rules.parse_event``'s
envelope rules, then the limits of the store's columns (PostgreSQL refuses a string over its
column length, a NUL character or a lone surrogate; SQLite and PostgreSQL both refuse an
integer past 64 bits). ``created`` must also be a time ``datetime`` can represent, since the
rules evaluate at it.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import String

from rules import parse_event
from rules.errors import MalformedEventError
from rules.events import BillingEvent
from worker.store.tables import EventRow


def _column_length(name: str) -> int:
    column_type = EventRow.__table__.c[name].type
    if not (isinstance(column_type, String) and column_type.length):
        raise TypeError(f"events.{name} is not a bounded string column")
    return column_type.length


#: Column lengths of the event log, read from the schema itself.
MAX_ID_LENGTH = _column_length("id")
MAX_TYPE_LENGTH = _column_length("type")
MAX_API_VERSION_LENGTH = _column_length("api_version")
#: 9999-12-31T23:59:59Z, the last second ``datetime`` holds (and well inside BIGINT).
MAX_CREATED = 253_402_300_799
#: A detail never echoes more of a hostile value than this.
MAX_DETAIL_LENGTH = 200


def storable_text(value: str, max_length: int | None = None) -> bool:
    """Whether both stores keep ``value`` as it is: no NUL, valid UTF-8, within the length."""
    if max_length is not None and len(value) > max_length:
        return False
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, from a \ud800 escape
        return False
    return True


def decode_json(body: str) -> Any:
    """``json.loads`` that reports every failure, deep nesting included, as malformed."""
    try:
        return json.loads(body)
    except RecursionError:
        raise MalformedEventError("JSON is nested too deeply") from None
    except ValueError as error:
        raise MalformedEventError(f"body is not JSON ({error})") from None


def _check_storable(event: BillingEvent) -> None:
    checks = (
        ("id", event.id, MAX_ID_LENGTH),
        ("type", event.type, MAX_TYPE_LENGTH),
        ("api_version", event.api_version or "", MAX_API_VERSION_LENGTH),
    )
    for name, value, limit in checks:
        if not storable_text(value, limit):
            raise MalformedEventError(
                f"'{name}' cannot be stored: at most {limit} characters, no NUL, valid UTF-8"
            )
    if not 0 <= event.created <= MAX_CREATED:
        raise MalformedEventError(f"'created' must be a Unix time between 0 and {MAX_CREATED}")
    object_id = event.object.get("id")
    if isinstance(object_id, str) and not storable_text(object_id, MAX_ID_LENGTH):
        raise MalformedEventError(
            f"'data.object.id' cannot be stored: at most {MAX_ID_LENGTH} characters, no NUL"
        )


def validate_event(body: str) -> BillingEvent:
    """The parsed event, or ``MalformedEventError`` with a detail that names the problem."""
    event = parse_event(decode_json(body))
    _check_storable(event)
    return event


def short_detail(error: Exception) -> str:
    """The error's message, cut to a length fit for an HTTP answer or a log line."""
    text = str(error)
    return text if len(text) <= MAX_DETAIL_LENGTH else text[: MAX_DETAIL_LENGTH - 1] + "…"
