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
