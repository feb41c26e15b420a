"""evaluate: one pure call, sorted unique findings, well-formed for the worker."""

from __future__ import annotations

import ast
from pathlib import Path

from rules import BillingSnapshot, RulesConfig, evaluate
from rules.findings import ACTION_TYPES, CLASSIFICATIONS, KINDS, SEVERITIES
from rules.snapshot import snapshot_of

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"
FORBIDDEN_MODULES = {
    "sqlalchemy", "flask", "dramatiq", "redis", "stripe", "jinja2", "structlog",
    "time", "random", "os", "socket", "requests", "httpx", "urllib", "logging",
}  # fmt: skip
FORBIDDEN_CALLS = {"now", "utcnow", "today", "time", "open", "print", "getenv"}


def test_findings_are_sorted_and_unique(scenario_name, scenario):
    """evaluate returns findings sorted by key, one per key."""
    events = scenario(scenario_name)
    snapshot = snapshot_of(events)
    for ev in events:
        keys = [f.key for f in evaluate(snapshot, ev, snapshot.as_of)]
        assert keys == sorted(set(keys))


def test_findings_are_well_formed(scenario_name, scenario, findings):
    """Every finding uses the documented vocabulary, int money, and sorted evidence."""
    for finding in findings(scenario(scenario_name)).values():
        assert finding.kind in KINDS
        assert finding.classification in CLASSIFICATIONS
        assert finding.severity in SEVERITIES
        assert finding.recommended_action.type in ACTION_TYPES
        assert finding.key == f"{finding.kind}:{finding.subjects[0]}"
        assert finding.evidence == tuple(sorted(set(finding.evidence))) and finding.evidence
        assert all(e.startswith("evt_") for e in finding.evidence)
        impact = finding.revenue_impact
        assert isinstance(impact.amount_minor, int)
        assert impact.mrr_at_risk_minor is None or isinstance(impact.mrr_at_risk_minor, int)
        assert (finding.question is not None) == (finding.classification == "unclassified")
        assert finding.reasoning.endswith(".") and finding.recommended_action.steps
        if finding.verify_contract:
            assert finding.recommended_action.steps[0].startswith("Verify the contract shape")


def test_clock_behind_snapshot_is_ignored(scenario):
    """A `now` older than the newest event evaluates at the snapshot's time."""
    events = scenario("incomplete_checkout")
    snapshot = snapshot_of(events)
    assert evaluate(snapshot, events[0], 0) == evaluate(snapshot, events[0], snapshot.as_of)


def test_empty_snapshot_has_no_findings(event):
    """Nothing known, nothing found."""
    assert evaluate(BillingSnapshot(), event("customer.created__current"), 0) == ()


def test_config_changes_thresholds(scenario):
    """A narrower duplicate-charge window turns the double charge into no finding."""
    events = scenario("duplicate_charge")
    snapshot = snapshot_of(events)
    narrow = RulesConfig(duplicate_charge_window_seconds=10)
    assert evaluate(snapshot, events[0], 0, narrow) == ()
    assert RulesConfig().duplicate_subscription_window_seconds == 3 * 86_400


def test_rules_package_is_pure():
    """No rules module imports I/O, clock or framework modules, or calls now()/time()/open()."""
    for path in sorted(RULES_DIR.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                names = []
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN_MODULES, f"{path.name} imports {name}"
            if isinstance(node, ast.Call):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                assert called not in FORBIDDEN_CALLS, f"{path.name} calls {called}()"
