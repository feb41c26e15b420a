"""The six-section handoff shows what the guard changed in the DECISION section."""

from __future__ import annotations

from rules import BillingSnapshot, RulesConfig
from rules.context import RuleContext
from rules.findings import Finding, RecommendedAction, RevenueImpact
from rules.guard import guard_findings
from rules.model import Charge, Dispute
from worker.handoff import render_handoff

T0 = 1_767_225_600


def test_decision_says_what_the_guard_removed_and_why():
    """A refund the guard removed is named in DECISION with its reason; the action is safe."""
    charge = Charge(
        "ch_B",
        "cus_G",
        4900,
        "usd",
        "succeeded",
        True,
        False,
        0,
        "pi_B",
        None,
        "fp_G",
        "visa",
        "4242",
        12,
        2030,
        T0,
        "evt_ch",
    )
    dispute = Dispute("dp_B", "ch_B", 4900, "usd", "duplicate", "needs_response", T0, None, "e")
    snapshot = BillingSnapshot(charges=(charge,), disputes=(dispute,))
    finding = Finding(
        "duplicate_charge",
        "accidental_duplicate",
        "high",
        "cus_G",
        ("ch_B",),
        (),
        RevenueImpact("usd", 4900, 0),
        RecommendedAction("refund_charge", "ch_B", False, ("Refund only the later charge ch_B",)),
        "two equal charges",
        None,
        False,
        (),
        (),
        True,
    )
    (guarded,) = guard_findings(RuleContext.build(snapshot, T0, RulesConfig()), [finding])
    handoff = render_handoff(guarded, snapshot)
    assert "guard: removed the refund of ch_B" in handoff["decision"]
    assert "chargeback (dp_B, needs_response)" in handoff["decision"]
    assert "NOT reversible" not in handoff["action_taken"]
    assert handoff["action_taken"].startswith("recommended: contact customer cus_G")


def test_billing_state_names_the_billing_reason_an_old_payload_omits():
    """localstripe's 2017-08-15 invoices carry no billing_reason: the handoff shows the one
    billing-ops derived (the paid first invoice, then the renewal), not "n/a"."""
    import json

    from rules import evaluate, parse_event
    from rules.snapshot import snapshot_of
    from tests.support import FIXTURES

    folder = FIXTURES / "scenarios" / "failed_renewal_localstripe_2017"
    events = [parse_event(json.loads(p.read_text())) for p in sorted(folder.glob("[0-9]*.json"))]
    snapshot = snapshot_of(events)
    (finding,) = evaluate(snapshot, events[-1], events[-1].created)
    state = render_handoff(finding, snapshot)["billing_state"]
    assert "invoice in_LisaFirst paid (subscription_create)" in state
    assert "invoice in_LisaRenew open (subscription_cycle)" in state
