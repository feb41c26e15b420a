"""Every scenario folder, fed through fold + evaluate, yields exactly its expected.json."""

from __future__ import annotations

from rules import build_snapshot, evaluate, records_from_event, supersedes


def summary(findings):
    return sorted(
        ({"kind": f.kind, "classification": f.classification, "key": f.key} for f in findings),
        key=lambda d: d["key"],
    )


def test_scenario_matches_expected(scenario_name, scenario, expected, findings):
    """Folding all events and evaluating each gives the expected kinds and classifications."""
    assert summary(findings(scenario(scenario_name)).values()) == expected(scenario_name)


def test_live_delivery_matches_expected(scenario_name, scenario, expected):
    """Processing events one at a time like the worker leaves exactly the expected cases open.

    Each event updates the projection, evaluate runs at the event's time, every finding opens or
    updates its case, and an auto_clear case whose finding no longer holds is resolved.
    """
    state: dict = {}
    cases: dict = {}
    for ev in scenario(scenario_name):
        for record in records_from_event(ev):
            if supersedes(record, state.get(record.key)):
                state[record.key] = record
        found = {f.key: f for f in evaluate(build_snapshot(state.values()), ev, ev.created)}
        cases.update(found)
        for key in [k for k, f in cases.items() if f.auto_clear and k not in found]:
            del cases[key]
    assert summary(cases.values()) == expected(scenario_name)
