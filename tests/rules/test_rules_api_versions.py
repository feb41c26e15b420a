"""Every scenario folder replayed in each older API version's shape (tests/api_shapes.py)
yields the same cases as in its own: the fallbacks of rules.versions and rules.parsing keep
the meaning of every story, whatever version the account is pinned to."""

from __future__ import annotations

import pytest

from rules import build_snapshot, evaluate, parse_event, records_from_event, supersedes
from tests.api_shapes import OLDER_SHAPES, to_version


def summary(findings):
    return sorted(
        ({"kind": f.kind, "classification": f.classification, "key": f.key} for f in findings),
        key=lambda d: d["key"],
    )


@pytest.mark.parametrize("version", OLDER_SHAPES)
def test_scenario_in_an_older_shape_gives_the_same_cases(
    version, scenario_name, scenario_payloads, expected
):
    """Delivered one at a time like the worker does, the down-converted events leave exactly
    the scenario's expected cases open."""
    events = [parse_event(to_version(p, version)) for p in scenario_payloads(scenario_name)]
    state: dict = {}
    cases: dict = {}
    for event in events:
        for record in records_from_event(event):
            if supersedes(record, state.get(record.key)):
                state[record.key] = record
        found = {f.key: f for f in evaluate(build_snapshot(state.values()), event, event.created)}
        cases.update(found)
        for key in [k for k, f in cases.items() if f.auto_clear and k not in found]:
            del cases[key]
    assert summary(cases.values()) == expected(scenario_name)
