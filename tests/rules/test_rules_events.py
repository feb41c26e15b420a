"""parse_event: the envelope is validated once, with errors that name the problem."""

from __future__ import annotations

import pytest

from rules import BillingEvent, parse_event
from rules.errors import MalformedEventError, RulesError


def test_parses_envelope_fields(payload):
    """An event's id, type, created, api_version, livemode and data are read as given."""
    event = parse_event(payload("customer.subscription.updated__downgrade_price"))
    assert isinstance(event, BillingEvent)
    assert event.id == "evt_1SubDowngrade"
    assert event.type == "customer.subscription.updated"
    assert event.created == 1767225600
    assert event.api_version == "2025-09-30.clover"
    assert event.livemode is False
    assert event.object["id"] == "sub_Down"
    assert "items" in event.previous_attributes


def test_missing_previous_attributes_is_empty(payload):
    """An event without previous_attributes gets an empty mapping, never None."""
    assert parse_event(payload("customer.created__current")).previous_attributes == {}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.pop("id"), "'id'"),
        (lambda p: p.pop("type"), "'type'"),
        (lambda p: p.update(created="1767225600"), "'created'"),
        (lambda p: p.update(created=True), "'created'"),
        (lambda p: p.pop("data"), "'data'"),
        (lambda p: p["data"].pop("object"), "'data.object'"),
        (lambda p: p["data"].update(object="cus_123"), "'data.object'"),
        (lambda p: p.update(object="customer"), "not an event"),
        (lambda p: p["data"].update(previous_attributes=[1]), "previous_attributes"),
    ],
)
def test_malformed_payload_raises_named_error(payload, mutate, message):
    """A payload missing an event field raises MalformedEventError naming that field."""
    doc = payload("customer.created__current")
    mutate(doc)
    with pytest.raises(MalformedEventError, match=message):
        parse_event(doc)


def test_malformed_event_error_is_a_value_error():
    """MalformedEventError is a ValueError and a RulesError, so either can be caught."""
    with pytest.raises(ValueError):
        parse_event([])  # type: ignore[arg-type]
    assert issubclass(MalformedEventError, RulesError)
