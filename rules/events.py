"""The event envelope, validated once at the edge of the core.

Everything downstream trusts a ``BillingEvent``: parsing fails loudly here, with a message that
names the missing field, instead of deep inside a rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rules.errors import MalformedEventError


@dataclass(frozen=True, slots=True)
class BillingEvent:
    """One Stripe event: its identity, time, and the object snapshot it carries.

    ``object`` is ``data.object`` and ``previous_attributes`` is ``data.previous_attributes``
    (empty when absent). Treat both as read-only.
    """

    id: str
    type: str
    created: int
    api_version: str | None
    livemode: bool
    object: Mapping[str, Any]
    previous_attributes: Mapping[str, Any] = field(default_factory=dict)


def parse_event(payload: Mapping[str, Any]) -> BillingEvent:
    """Validate a decoded Stripe event payload and return it as a ``BillingEvent``.

    Raises ``MalformedEventError`` when the payload is not an event object.
    """
    if not isinstance(payload, Mapping):
        raise MalformedEventError(
            f"event payload must be a JSON object, got {type(payload).__name__}"
        )
    kind = payload.get("object")
    if kind is not None and kind != "event":
        raise MalformedEventError(f"payload is a {kind!r} object, not an event")
    event_id = payload.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise MalformedEventError("event is missing a string 'id'")
    event_type = payload.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise MalformedEventError(f"event {event_id} is missing a string 'type'")
    created = payload.get("created")
    if isinstance(created, bool) or not isinstance(created, int):
        raise MalformedEventError(f"event {event_id} is missing an integer 'created' timestamp")
    data = payload.get("data")
    if not isinstance(data, Mapping):
        raise MalformedEventError(f"event {event_id} is missing 'data'")
    obj = data.get("object")
    if not isinstance(obj, Mapping):
        raise MalformedEventError(f"event {event_id} is missing 'data.object'")
    previous = data.get("previous_attributes")
    if previous is not None and not isinstance(previous, Mapping):
        raise MalformedEventError(f"event {event_id} has a non-object 'data.previous_attributes'")
    api_version = payload.get("api_version")
    return BillingEvent(
        id=event_id,
        type=event_type,
        created=created,
        api_version=api_version if isinstance(api_version, str) else None,
        livemode=bool(payload.get("livemode", False)),
        object=obj,
        previous_attributes=previous or {},
    )


def occasion_event(event_type: str, at: int) -> BillingEvent:
    """An evaluation that no Stripe event caused (a clock tick, a sync): it carries no object,
    so only the state rules act, and its id (``<kind>_<at>``) names the occasion in timelines."""
    return BillingEvent(
        id=f"{event_type.rsplit('.', 1)[-1]}_{at}",
        type=event_type,
        created=at,
        api_version=None,
        livemode=False,
        object={},
    )
