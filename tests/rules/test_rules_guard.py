"""The guard over all of a person's findings: no harmful or contradictory action survives it."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from rules import BillingSnapshot, RulesConfig, evaluate
from rules.context import RuleContext
from rules.events import BillingEvent
from rules.findings import Finding, RecommendedAction, RevenueImpact
from rules.guard import guard_findings
from rules.model import Charge, Customer, Dispute, Invoice, Subscription, SubscriptionItem

T0 = 1_767_225_600
EVENT = BillingEvent("evt_Guard", "customer.updated", T0, None, False, {"id": "cus_G"})


def customer(cid: str = "cus_G") -> Customer:
    return Customer(cid, "Gail", "gail@example.com", True, False, T0, "evt_c")


def sub(
    sid: str,
    *,
    status="active",
    created=T0,
    quantity=1,
    cancel_at_period_end=False,
    metadata=None,
    product="prod_Pro",
    customer_id="cus_G",
) -> Subscription:
    item = SubscriptionItem("price_Pro", product, "month", 1, 2900, "usd", quantity, created, None)
    return Subscription(
        sid,
        customer_id,
        status,
        (item,),
        created,
        created,
        created + 30 * 86_400,
        None,
        None,
        cancel_at_period_end,
        None,
        None,
        None,
        None,
        None,
        metadata or {},
        None,
        None,
        f"evt_{sid}",
    )


def invoice(iid: str, sid: str, pi: str, created=T0, amount=2900) -> Invoice:
    return Invoice(
        iid,
        "cus_G",
        sid,
        "paid",
        "subscription_create",
        1,
        None,
        amount,
        amount,
        0,
        "usd",
        None,
        None,
        pi,
        created,
        "gail@example.com",
        "Gail",
        f"evt_{iid}",
    )


def charge(cid: str, pi: str, *, created=T0, amount=2900, refunded=0, customer_id="cus_G"):
    return Charge(
        cid,
        customer_id,
        amount,
        "usd",
        "succeeded",
        True,
        refunded >= amount and amount > 0,
        refunded,
        pi,
        None,
        "fp_G",
        "visa",
        "4242",
        12,
        2030,
        created,
        f"evt_{cid}",
    )


def dispute(did: str, cid: str, status: str, refundable: bool | None = None) -> Dispute:
    return Dispute(
        did, cid, 2900, "usd", "duplicate", status, T0, T0 + 86_400 * 20, f"evt_{did}", refundable
    )


def finding(key_subject: str, action: RecommendedAction, kind="duplicate_charge") -> Finding:
    return Finding(
        kind,
        "accidental_duplicate",
        "high",
        "cus_G",
        (key_subject,),
        (),
        RevenueImpact("usd", 0, 0),
        action,
        "why",
        None,
        False,
        (),
        (),
        True,
    )


def ctx_of(snapshot: BillingSnapshot) -> RuleContext:
    return RuleContext.build(snapshot, T0 + 3600, RulesConfig())


def test_refund_of_a_charged_back_charge_becomes_a_do_not():
    """A refund of a charge under a chargeback is replaced, and the finding says why."""
    snap = BillingSnapshot(
        customers=(customer(),),
        charges=(charge("ch_A", "pi_A"), charge("ch_B", "pi_B", created=T0 + 40)),
        disputes=(dispute("dp_B", "ch_B", "needs_response", False),),
    )
    refund = RecommendedAction("refund_charge", "ch_B", False, ("Refund only the later one ch_B",))
    (guarded,) = guard_findings(ctx_of(snap), [finding("ch_B", refund)])
    assert guarded.recommended_action.type == "contact_customer"
    assert guarded.recommended_action.steps[0].startswith("Do not refund ch_B")
    assert any("chargeback" in note and "dp_B" in note for note in guarded.guard_notes)


def test_cancelling_the_last_continuing_subscription_is_refused():
    """Cancel of the only subscription that continues (the other ends at period end) is refused."""
    snap = BillingSnapshot(
        customers=(customer(),),
        subscriptions=(sub("sub_Old", cancel_at_period_end=True), sub("sub_New", created=T0 + 60)),
    )
    cancel = RecommendedAction(
        "cancel_subscription",
        "sub_New",
        False,
        (
            "Fix the duplicate state: cancel the newer subscription sub_New immediately",
            "Refund only ch_New (29.00 USD)",
        ),
    )
    dup = finding("sub_New", cancel, "duplicate_subscription")
    (guarded,) = guard_findings(ctx_of(snap), [dup])
    action = guarded.recommended_action
    assert action.type == "contact_customer"
    assert len(action.steps) == 1 and action.steps[0].startswith("Do not cancel sub_New")
    assert "last subscription that continues" in action.steps[0]
    assert "replaced 'cancel sub_New'" in guarded.guard_notes[0]


def test_two_findings_never_both_refund_one_charge():
    """The second finding that would refund the same charge points to the first instead."""
    snap = BillingSnapshot(customers=(customer(),), charges=(charge("ch_A", "pi_A"),))
    refund = RecommendedAction("refund_charge", "ch_A", False, ("Refund ch_A in full",))
    first, second = guard_findings(
        ctx_of(snap), [finding("ch_A", refund), finding("ch_A", refund, "fraud_warning")]
    )
    assert first.recommended_action.type == "refund_charge" and first.guard_notes == ()
    assert second.recommended_action.type == "contact_customer"
    assert "duplicate_charge:ch_A" in second.guard_notes[0]


# --- the property over generated people ----------------------------------------------------

SEAT_KEYS = RulesConfig().seat_metadata_keys
STATUSES = ("active", "active", "trialing", "past_due", "canceled")


@st.composite
def people(draw):  # type: ignore[no-untyped-def]
    """A person: 1-2 customer records, subscriptions with their paid invoices and charges,
    extra one-off charges, refunds, disputes of every status, team seats and trials."""
    customers = ("cus_G", "cus_H")[: draw(st.integers(1, 2))]
    subs, invoices, charges, disputes = [], [], [], []
    for n in range(draw(st.integers(0, 4))):
        sid = f"sub_{n}"
        created = T0 + draw(st.integers(0, 5 * 86_400))
        quantity = draw(st.sampled_from((1, 1, 1, 5)))
        metadata = {draw(st.sampled_from(SEAT_KEYS)): "acme"} if draw(st.booleans()) else {}
        subs.append(
            sub(
                sid,
                status=draw(st.sampled_from(STATUSES)),
                created=created,
                quantity=quantity,
                cancel_at_period_end=draw(st.booleans()),
                metadata=metadata if draw(st.integers(0, 3)) == 0 else {},
                product=draw(st.sampled_from(("prod_Pro", "prod_Pro", "prod_Team"))),
                customer_id=draw(st.sampled_from(customers)),
            )
        )
        if draw(st.booleans()):
            invoices.append(invoice(f"in_{n}", sid, f"pi_{n}", created, 2900 * quantity))
            charges.append(
                charge(
                    f"ch_{n}",
                    f"pi_{n}",
                    created=created + draw(st.integers(0, 30)),
                    amount=2900 * quantity,
                    refunded=draw(st.sampled_from((0, 0, 100, 2900))),
                    customer_id=subs[-1].customer_id,
                )
            )
    for n in range(draw(st.integers(0, 3))):
        charges.append(
            charge(
                f"ch_x{n}",
                f"pi_x{n}",
                created=T0 + draw(st.integers(0, 900)),
                amount=draw(st.sampled_from((2900, 14500))),
                refunded=draw(st.sampled_from((0, 0, 2900))),
                customer_id=draw(st.sampled_from(customers)),
            )
        )
    statuses = (
        "warning_needs_response",
        "warning_under_review",
        "warning_closed",
        "needs_response",
        "under_review",
        "won",
        "lost",
        "prevented",
    )
    for n, ch in enumerate(charges):
        if draw(st.integers(0, 3)) == 0:
            disputes.append(
                dispute(
                    f"dp_{n}",
                    ch.id,
                    draw(st.sampled_from(statuses)),
                    draw(st.sampled_from((None, True, False))),
                )
            )
    return BillingSnapshot(
        customers=tuple(customer(c) for c in customers),
        subscriptions=tuple(subs),
        invoices=tuple(invoices),
        charges=tuple(charges),
        disputes=tuple(disputes),
        newest_event_created=T0 + 6 * 86_400,
    )


def _refunds_named(f: Finding, charge_id: str) -> bool:
    action = f.recommended_action
    if action.type == "refund_charge" and action.target == charge_id:
        return True
    pattern = re.compile(rf"(^|: )refund\b.*(?<!\w){re.escape(charge_id)}(?!\w)", re.IGNORECASE)
    return any(pattern.search(step) for step in action.steps)


@settings(max_examples=300, deadline=None, database=None)
@given(snapshot=people())
def test_no_advice_refunds_a_protected_charge_or_strands_a_paying_customer(snapshot):
    """Over generated people: no refund of a charged-back, refunded or team-seat charge, and
    no cancellation that leaves a customer who pays with no continuing subscription."""
    found = evaluate(snapshot, EVENT, snapshot.as_of)
    team_subs = {
        s.id
        for s in snapshot.subscriptions
        if s.max_quantity > 1 or any(s.metadata.get(k) for k in SEAT_KEYS)
    } | {
        subject
        for f in found
        if f.classification == "team_purchase"
        for subject in f.subjects
        if subject.startswith("sub_")
    }
    team_charges = {f"ch_{i.id[3:]}" for i in snapshot.invoices if i.subscription_id in team_subs}
    protected = (
        {c.id for c in snapshot.charges if c.amount_refunded}
        | {d.charge_id for d in snapshot.disputes if d.blocks_refund}
        | team_charges
    )
    for f in found:
        for charge_id in protected:
            assert not _refunds_named(f, charge_id), (f.key, charge_id, f.recommended_action)
    continuing = {s.id for s in snapshot.subscriptions if s.is_live and not s.cancel_at_period_end}
    cancelled = {
        f.recommended_action.target
        for f in found
        if f.recommended_action.type == "cancel_subscription"
    }
    assert not cancelled & team_subs
    if continuing:
        assert continuing - cancelled, (continuing, cancelled)
