"""The FOLLOW-UP a customer reads never promises what the DECISION does not do.

Every scenario folder is delivered event by event like the worker does, and every single-event
fixture is evaluated on its own; every finding's handoff is rendered, and its follow-up is
checked against the finding's own action.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from rules import Finding, build_snapshot, evaluate, parse_event, records_from_event, supersedes
from rules.snapshot import BillingSnapshot
from tests.support import FIXTURES
from worker.handoff import promises_refund, render_handoff

SCENARIOS = sorted(p.name for p in (FIXTURES / "scenarios").iterdir() if p.is_dir())
EVENTS = sorted(p.name for p in (FIXTURES / "events").glob("*.json"))
CASES = [*SCENARIOS, *EVENTS]


def rendered(name: str) -> Iterator[tuple[Finding, BillingSnapshot, dict[str, str]]]:
    """Findings of a scenario folder (delivered in order) or of one event fixture."""
    folder = FIXTURES / "scenarios" / name
    paths = sorted(folder.glob("[0-9]*.json")) if folder.is_dir() else [FIXTURES / "events" / name]
    state: dict = {}
    for path in paths:
        event = parse_event(json.loads(path.read_text()))
        for record in records_from_event(event):
            if supersedes(record, state.get(record.key)):
                state[record.key] = record
        snapshot = build_snapshot(state.values())
        for finding in evaluate(snapshot, event, event.created):
            yield finding, snapshot, render_handoff(finding, snapshot)


@pytest.mark.parametrize("name", CASES)
def test_follow_up_promises_a_refund_only_when_the_decision_makes_one(name):
    """No follow-up tells the customer a charge will be refunded unless a refund is planned."""
    for finding, _, handoff in rendered(name):
        if not promises_refund(finding):
            assert "refund" not in handoff["follow_up"].lower(), (finding.key, handoff["follow_up"])


@pytest.mark.parametrize("name", CASES)
def test_follow_up_promises_a_retry_only_when_stripe_will_retry(name):
    """A renewal that needs the invoice paid by hand never says "while we retry"."""
    for finding, _, handoff in rendered(name):
        if finding.recommended_action.type == "send_invoice_link":
            assert "retry" not in handoff["follow_up"].lower(), (finding.key, handoff["follow_up"])


@pytest.mark.parametrize("name", CASES)
def test_follow_up_names_the_subscription_the_customer_keeps(name):
    """An accidental duplicate's follow-up says which subscription stays, not "the original"."""
    for finding, _, handoff in rendered(name):
        if finding.kind == "duplicate_subscription" and finding.classification == (
            "accidental_duplicate"
        ):
            cancelled = finding.recommended_action.target
            kept = [s for s in finding.subjects if s.startswith("sub_") and s != cancelled]
            assert kept, finding.subjects
            assert kept[0] in handoff["follow_up"], (finding.key, handoff["follow_up"])
