"""Fixture loaders for the rules tests: paths resolve relative to the tests folder."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from rules import BillingEvent, Finding, RulesConfig, build_snapshot, evaluate, fold, parse_event

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
EVENTS_DIR = FIXTURES / "events"
SCENARIOS_DIR = FIXTURES / "scenarios"


def scenario_names() -> list[str]:
    """Every scenario folder, sorted."""
    return sorted(p.name for p in SCENARIOS_DIR.iterdir() if p.is_dir())


def event_fixture_names() -> list[str]:
    """Every single-event fixture name (file stem), sorted."""
    return sorted(p.stem for p in EVENTS_DIR.glob("*.json"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise ``scenario_name`` / ``event_name`` over the fixture folders."""
    if "scenario_name" in metafunc.fixturenames:
        metafunc.parametrize("scenario_name", scenario_names())
    if "event_name" in metafunc.fixturenames:
        metafunc.parametrize("event_name", event_fixture_names())


@pytest.fixture(scope="session")
def payload() -> Callable[[str], dict[str, Any]]:
    """Load a single-event fixture as a fresh (mutable) dict."""
    cache: dict[str, dict[str, Any]] = {}

    def load(name: str) -> dict[str, Any]:
        if name not in cache:
            cache[name] = json.loads((EVENTS_DIR / f"{name}.json").read_text())
        return copy.deepcopy(cache[name])

    return load


@pytest.fixture(scope="session")
def event(payload: Callable[[str], dict[str, Any]]) -> Callable[[str], BillingEvent]:
    """Load and parse a single-event fixture."""
    return lambda name: parse_event(payload(name))


@pytest.fixture(scope="session")
def scenario_payloads() -> Callable[[str], list[dict[str, Any]]]:
    """Load a scenario's event payloads in file (arrival) order, as fresh dicts."""

    def load(name: str) -> list[dict[str, Any]]:
        files = sorted((SCENARIOS_DIR / name).glob("[0-9]*.json"))
        return [json.loads(p.read_text()) for p in files]

    return load


@pytest.fixture(scope="session")
def scenario(scenario_payloads: Callable[[str], list[dict[str, Any]]]) -> Callable[[str], list]:
    """Load a scenario as parsed events in arrival order."""
    return lambda name: [parse_event(p) for p in scenario_payloads(name)]


@pytest.fixture(scope="session")
def expected() -> Callable[[str], list[dict[str, str]]]:
    """A scenario's expected findings (kind, classification, key), sorted by key."""

    def load(name: str) -> list[dict[str, str]]:
        docs = json.loads((SCENARIOS_DIR / name / "expected.json").read_text())
        return sorted(docs, key=lambda d: d["key"])

    return load


def findings_after(
    events: Iterable[BillingEvent], now: int | None = None, config: RulesConfig | None = None
) -> dict[str, Finding]:
    """Fold all events, then evaluate once per event: state findings plus every event's own."""
    events = list(events)
    snapshot = build_snapshot(fold(events).values())
    at = snapshot.as_of if now is None else now
    found: dict[str, Finding] = {}
    for ev in events:
        for finding in evaluate(snapshot, ev, at, config or RulesConfig()):
            found.setdefault(finding.key, finding)
    return found


@pytest.fixture(scope="session")
def findings() -> Callable[..., dict[str, Finding]]:
    """``findings(events, now=None, config=None)`` -> {key: Finding} over the folded events."""
    return findings_after
