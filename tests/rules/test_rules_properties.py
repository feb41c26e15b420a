"""Properties: order and redelivery never change the outcome; teams and single payments are safe."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from rules import evaluate, parse_event
from rules.snapshot import snapshot_of

# database=None: the rules tests write nothing outside their own folders.
SETTINGS = settings(max_examples=50, deadline=None, database=None)


def outcome(events):
    """(state findings, event-derived findings) over the fold of ``events``."""
    snapshot = snapshot_of(events)
    state, derived = set(), set()
    for ev in events:
        for finding in evaluate(snapshot, ev, snapshot.as_of):
            (state if finding.auto_clear else derived).add(finding)
    return frozenset(state), frozenset(derived)


def deliveries(events):
    """Any interleaving of the events, each delivered one to three times."""
    repeated = st.lists(st.integers(1, 3), min_size=len(events), max_size=len(events)).map(
        lambda counts: [ev for ev, n in zip(events, counts, strict=True) for _ in range(n)]
    )
    return repeated.flatmap(st.permutations)


@SETTINGS
@given(data=st.data())
def test_order_and_redelivery_do_not_change_findings(scenario_name, scenario, data):
    """Any arrival order with any redeliveries yields the same state and event-derived findings."""
    events = scenario(scenario_name)
    baseline = outcome(events)
    assert outcome(data.draw(deliveries(events))) == baseline


@SETTINGS
@given(
    quantities=st.tuples(st.integers(1, 50), st.integers(1, 50)).filter(lambda q: max(q) >= 2)
    | st.just((1, 1)),
    metadata_key=st.none()
    | st.sampled_from(("seats", "team", "team_id", "seat_count", "workspace")),
    metadata_on=st.sampled_from((0, 1)),
    gap=st.integers(0, 3 * 86_400),
    same_customer=st.booleans(),
)
def test_team_purchase_is_never_an_accidental_duplicate(
    scenario_payloads, quantities, metadata_key, metadata_on, gap, same_customer
):
    """Several seats or seat/team metadata on either subscription never yield a refund."""
    if quantities == (1, 1) and metadata_key is None:
        return  # not a team purchase: nothing to check
    payloads = copy.deepcopy(scenario_payloads("accidental_duplicate_subscription"))
    first, second = payloads[1]["data"]["object"], payloads[6]["data"]["object"]
    second["created"] = first["created"] + gap
    for sub, quantity in zip((first, second), quantities, strict=True):
        sub["items"]["data"][0]["quantity"] = quantity
    if metadata_key is not None:
        (first, second)[metadata_on]["metadata"] = {metadata_key: "acme"}
    if same_customer:
        second["customer"] = first["customer"]
    events = [parse_event(p) for p in payloads]
    snapshot = snapshot_of(events)
    findings = [f for ev in events for f in evaluate(snapshot, ev, snapshot.as_of)]
    dups = [f for f in findings if f.kind == "duplicate_subscription"]
    assert dups and all(f.classification == "team_purchase" for f in dups)
    assert not any(
        f.recommended_action.type in ("refund_charge", "cancel_subscription") for f in findings
    )
    assert all(f.revenue_impact.amount_minor == 0 for f in dups)


@SETTINGS
@given(
    kinds=st.lists(
        st.sampled_from(("charge.succeeded", "charge.updated", "charge.captured")),
        min_size=1,
        max_size=6,
    ),
    offsets=st.lists(st.integers(0, 600), min_size=6, max_size=6),
    with_invoice=st.booleans(),
    retry_on_same_intent=st.booleans(),
    data=st.data(),
)
def test_one_payment_is_never_a_duplicate_of_itself(
    payload, kinds, offsets, with_invoice, retry_on_same_intent, data
):
    """One charge delivered as succeeded/updated/captured, with its invoice, is one payment."""
    base = payload("charge.succeeded__card")
    docs = []
    for n, (kind, offset) in enumerate(zip(kinds, offsets, strict=False)):
        doc = copy.deepcopy(base)
        doc.update(id=f"evt_OnePay{n}", type=kind, created=base["created"] + offset)
        docs.append(doc)
    if retry_on_same_intent:  # a second charge attempt on the same payment intent
        retry = copy.deepcopy(base)
        retry["id"] = "evt_OnePayRetry"
        retry["data"]["object"].update(id="ch_CurRetry", created=base["created"] + 30)
        docs.append(retry)
    if with_invoice:
        docs.append(payload("invoice.paid__current_payments"))
        docs.append(payload("customer.subscription.created__current_expanded"))
    events = data.draw(st.permutations([parse_event(d) for d in docs]))
    snapshot = snapshot_of(events)
    for ev in events:
        assert not [
            f for f in evaluate(snapshot, ev, snapshot.as_of) if f.kind == "duplicate_charge"
        ]
