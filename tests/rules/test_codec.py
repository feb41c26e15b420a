"""The one finding codec: every finding a scenario yields survives JSON and back unchanged."""

from __future__ import annotations

import json

import pytest

from rules.codec import finding_from_json, finding_to_json
from rules.errors import MalformedFindingError


def test_every_scenario_finding_round_trips(scenario_name, scenario, findings):
    """finding_from_json(json(finding_to_json(f))) == f for every finding of every scenario."""
    for finding in findings(scenario(scenario_name)).values():
        doc = json.loads(json.dumps(finding_to_json(finding)))
        assert doc["key"] == finding.key
        assert finding_from_json(doc) == finding


def test_a_case_stored_before_guard_notes_still_loads(scenario, findings):
    """A stored document without the later guard_notes field loads with none."""
    (finding,) = findings(scenario("duplicate_charge")).values()
    doc = finding_to_json(finding)
    del doc["guard_notes"]
    doc["customer_view"] = {"id": "cus_Bob"}  # the worker's addition is ignored
    assert finding_from_json(doc) == finding


def test_a_document_missing_a_field_is_refused():
    """A document without a required field raises MalformedFindingError, naming it."""
    with pytest.raises(MalformedFindingError, match="kind"):
        finding_from_json({"classification": "unclassified"})
