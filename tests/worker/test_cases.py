"""Cases from findings: one per problem, stable under redelivery and any arrival order."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import FIXTURES, envelope, subscription
from worker.cases import list_cases, set_status
from worker.pipeline import process_event, utc_now
from worker.store.db import make_engine, upgrade_database

T0 = 1_764_000_000
SCENARIOS = FIXTURES / "scenarios"


def scenario_events() -> list[str]:
    """Every scenario's events, in their folders' order."""
    return [
        json.dumps(json.loads(path.read_text()))
        for folder in sorted(SCENARIOS.iterdir())
        for path in sorted(folder.glob("[0-9]*.json"))
    ]


def open_cases(engine) -> list[tuple[str, str, str]]:
    return sorted(
        (c["key"], c["classification"], c["severity"]) for c in list_cases(engine, status="open")
    )


@pytest.fixture
def fresh_engine(tmp_path):
    """A new SQLite store per call, for comparing several runs."""
    count = iter(range(1000))

    def make():
        engine = make_engine(f"sqlite:///{tmp_path / f'run{next(count)}.db'}")
        upgrade_database(engine, tmp_path)
        return engine

    return make


def test_shuffled_redelivered_stream_gives_the_in_order_cases(fresh_engine):
    """Every scenario replayed in order, then reversed, then shuffled with redeliveries (three
    seeds), ends with the same open cases."""
    events = scenario_events()
    in_order = fresh_engine()
    for body in events:
        process_event(in_order, body)
    expected = open_cases(in_order)
    assert expected  # the scenarios do produce cases
    streams = {"reversed": events[::-1]}
    for seed in (1, 2, 3):
        rng = random.Random(seed)
        stream = events + rng.sample(events, k=len(events) // 2)
        rng.shuffle(stream)
        streams[f"seed {seed}"] = stream
    for name, stream in streams.items():
        engine = fresh_engine()
        for body in stream:
            process_event(engine, body)
        assert open_cases(engine) == expected, name


def test_first_payment_delivered_after_the_cancellation_changes_no_case(engine):
    """localstripe's paid subscription (2017-08-15: no billing_reason) whose renewal fails,
    then canceled; the first invoice's invoice.payment_succeeded is processed last. The same
    cases as in-order delivery, and no others: the churn case and the failed renewal, both
    open, and no incomplete_checkout opened on the way (the known second invoice shows the
    subscription started, ``rules.checkout.started``)."""
    folder = SCENARIOS / "failed_renewal_then_canceled_localstripe_2017"
    bodies = [path.read_text() for path in sorted(folder.glob("[0-9]*.json"))]
    first_paid = next(b for b in bodies if '"invoice.payment_succeeded"' in b)
    for body in [b for b in bodies if b is not first_paid] + [first_paid]:
        process_event(engine, body)
    cases = sorted((c["kind"], c["status"]) for c in list_cases(engine))
    assert cases == [("churn_signal", "open"), ("failed_renewal", "open")]


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        # the subscription's snapshot naming its first invoice is stored, then replaced by
        # the cancellation: the store keeps what it named, so no incomplete_checkout opens
        (("01", "04", "05", "06", "07"), [("churn_signal", "open")]),
        # it arrives after the cancellation: the stored cancellation takes what it named, the
        # incomplete_checkout read meanwhile is resolved and the cancellation's churn drawn
        (
            ("01", "05", "06", "07", "04"),
            [("churn_signal", "open"), ("incomplete_checkout", "resolved")],
        ),
    ],
    ids=["named-before-the-cancellation", "named-after-the-cancellation"],
)
def test_the_first_invoice_a_subscription_named_shows_it_started(engine, order, expected):
    """The first invoice's own events never arrive (yet); the subscription's earlier snapshot
    named it as ``latest_invoice``, and the cancellation names the renewal: two invoices, so
    the subscription started and its cancellation is churn (``rules.records.combine``)."""
    folder = SCENARIOS / "failed_renewal_then_canceled_localstripe_2017"
    for prefix in order:
        (path,) = folder.glob(f"{prefix}_*.json")
        process_event(engine, path.read_text())
    assert sorted((c["kind"], c["status"]) for c in list_cases(engine)) == expected


def test_redelivery_does_not_touch_the_case_timeline(engine):
    """Delivering the same events again adds no timeline entry and no case."""
    bodies = [
        envelope("evt_1", "customer.subscription.created",
                 subscription("sub_1", "cus_1", created=T0), T0),
        envelope("evt_2", "customer.subscription.created",
                 subscription("sub_2", "cus_1", created=T0 + 60), T0 + 60),
    ]  # fmt: skip
    for body in bodies * 3:
        process_event(engine, body)
    (case,) = list_cases(engine)
    from worker.cases import get_case

    assert [e["action"] for e in get_case(engine, case["id"])["timeline"]] == ["opened"]


def _cancel_at_period_end(event_id: str, on: bool, at: int) -> str:
    sub = subscription("sub_c", "cus_c", created=T0)
    sub["cancel_at_period_end"] = on
    sub["cancel_at"] = T0 + 30 * 86400 if on else None
    previous = {"cancel_at_period_end": not on}
    return envelope(
        event_id, "customer.subscription.updated", sub, at, previous_attributes=previous
    )


def test_a_problem_that_clears_and_comes_back_reopens_its_case(engine):
    """cancel_at_period_end on → off → on: opened, resolved by billing-ops, reopened."""
    process_event(engine, envelope("evt_0", "customer.subscription.created",
                                   subscription("sub_c", "cus_c", created=T0), T0))  # fmt: skip
    process_event(engine, _cancel_at_period_end("evt_on", True, T0 + 100))
    process_event(engine, _cancel_at_period_end("evt_off", False, T0 + 200))
    process_event(engine, _cancel_at_period_end("evt_on2", True, T0 + 300))
    from worker.cases import get_case

    churn = [c for c in list_cases(engine) if c["key"] == "churn_signal:sub_c"]
    assert len(churn) == 1
    timeline = [e["action"] for e in get_case(engine, churn[0]["id"])["timeline"]]
    assert timeline[0] == "opened" and "auto_resolved" in timeline and timeline[-1] == "reopened"
    assert churn[0]["status"] == "open"


def test_operator_resolution_stands_without_new_evidence(engine):
    """An operator resolves a duplicate; a later update of the same subscription (a renewal,
    a metadata change) does not reopen it."""
    first = envelope("evt_1", "customer.subscription.created",
                     subscription("sub_1", "cus_1", created=T0), T0)  # fmt: skip
    second = envelope("evt_2", "customer.subscription.created",
                      subscription("sub_2", "cus_1", created=T0 + 60), T0 + 60)  # fmt: skip
    process_event(engine, first)
    process_event(engine, second)
    (case,) = list_cases(engine)
    set_status(engine, case["id"], "resolved", actor="sam", note="team confirmed", now=utc_now())
    renewed = subscription("sub_1", "cus_1", created=T0)
    renewed["metadata"] = {"note": "renewed"}
    process_event(engine, envelope("evt_3", "customer.subscription.updated", renewed, T0 + 999))
    assert [c["status"] for c in list_cases(engine)] == ["resolved"]


def test_operator_resolution_reopens_when_the_problem_grows(engine):
    """An operator resolved a duplicate; the copy's price then goes from US$29 to US$1,200 a
    month (severity high → critical), so the same case reopens and says why."""
    for n in (1, 2):
        process_event(engine, envelope(f"evt_{n}", "customer.subscription.created",
                      subscription(f"sub_{n}", "cus_1", created=T0 + n), T0 + n))  # fmt: skip
    (case,) = list_cases(engine)
    assert (case["key"], case["severity"]) == ("duplicate_subscription:sub_2", "high")
    set_status(engine, case["id"], "resolved", actor="sam", note="cancelled", now=utc_now())
    grown = subscription("sub_2", "cus_1", created=T0 + 2, price="price_pro_big", amount=120_000)
    process_event(engine, envelope("evt_3", "customer.subscription.updated", grown, T0 + 3))
    (after,) = list_cases(engine)
    assert (after["id"], after["status"], after["severity"]) == (case["id"], "open", "critical")
    from worker.cases import get_case

    last = get_case(engine, case["id"])["timeline"][-1]
    assert (last["action"], last["note"], last["event_id"]) == (
        "reopened",
        "the problem came back",
        "evt_3",
    )


@pytest.fixture(scope="module")
def in_order_cases(tmp_path_factory):
    """The open cases after every scenario event is processed once, in folder order."""
    folder = tmp_path_factory.mktemp("in-order")
    engine = make_engine(f"sqlite:///{folder / 'store.db'}")
    upgrade_database(engine, folder)
    for body in scenario_events():
        process_event(engine, body)
    return open_cases(engine)


@settings(max_examples=8, deadline=None, database=None)
@given(data=st.data())
def test_any_interleaving_and_redelivery_gives_the_same_open_cases(
    data, in_order_cases, tmp_path_factory
):
    """Property, on the real store: any order of the scenario events, with any of them
    delivered up to three times, ends with the in-order open cases."""
    events = scenario_events()
    repeats = data.draw(st.lists(st.integers(1, 3), min_size=len(events), max_size=len(events)))
    stream = [body for body, times in zip(events, repeats, strict=True) for _ in range(times)]
    stream = data.draw(st.permutations(stream))
    folder = tmp_path_factory.mktemp("shuffled")
    engine = make_engine(f"sqlite:///{folder / 'store.db'}")
    upgrade_database(engine, folder)
    for body in stream:
        process_event(engine, body)
    assert open_cases(engine) == in_order_cases


def unknown_versions_read_as(version: str) -> float:
    """``billing_ops_events_unknown_api_version_total{read_as=version}`` in this process."""
    from prometheus_client import REGISTRY

    value = REGISTRY.get_sample_value(
        "billing_ops_events_unknown_api_version_total", {"read_as": version}
    )
    return value or 0.0


def test_timeline_names_the_api_version_and_an_unknown_one_is_read_not_dropped(engine):
    """Each timeline entry names its event's API version; an event of a version billing-ops
    does not know (2016-07-06) is still processed, read as the closest known shape, and
    counted in billing_ops_events_unknown_api_version_total."""
    from worker.cases import get_case

    folder = SCENARIOS / "failed_renewal_localstripe_2017"
    bodies = [json.loads(p.read_text()) for p in sorted(folder.glob("[0-9]*.json"))]
    bodies[-1]["api_version"] = "2016-07-06"
    counted = unknown_versions_read_as("2017-01-27")
    for body in bodies:
        assert process_event(engine, json.dumps(body)).status == "processed"
    assert unknown_versions_read_as("2017-01-27") == counted + 1  # the 2017-08-15 ones are known
    (case,) = list_cases(engine)
    (opened,) = get_case(engine, case["id"])["timeline"]
    assert opened["event_id"] == bodies[-1]["id"]
    assert opened["api_version"] == "2016-07-06"
    assert opened["api_version_read_as"] == "2017-01-27"


def test_a_cancellation_before_the_failed_first_invoice_ends_as_an_incomplete_checkout(engine):
    """Delivered out of order (the cancellation first), the churn case it opened is resolved
    once the failed first invoice shows the subscription never started."""
    folder = SCENARIOS / "incomplete_canceled_after_3ds"
    bodies = [p.read_text() for p in sorted(folder.glob("[0-9]*.json"))]
    for body in [bodies[-1], *bodies[:-1]]:  # customer.subscription.deleted first
        process_event(engine, body)
    assert [c["key"] for c in list_cases(engine, status="open")] == ["incomplete_checkout:sub_Iris"]
    (churn,) = list_cases(engine, kind="churn_signal")
    assert churn["status"] == "resolved"
    assert (
        churn["status_note"] == "the subscription never started: its first payment never completed"
    )


def _duplicate(engine) -> int:
    """Two identical subscriptions (an accidental duplicate case), the case's id."""
    for n, at in ((1, T0), (2, T0 + 60)):
        sub = subscription(f"sub_{n}", "cus_1", created=at)
        process_event(engine, envelope(f"evt_{n}", "customer.subscription.created", sub, at))
    (case,) = list_cases(engine)
    return int(case["id"])


def _deleted(sub_id: str, at: int) -> str:
    sub = subscription(sub_id, "cus_1", created=T0 + 60, status="canceled")
    sub["canceled_at"] = sub["ended_at"] = at
    sub["cancellation_details"] = {"comment": None, "feedback": None,
                                   "reason": "cancellation_requested"}  # fmt: skip
    return envelope(f"evt_del_{sub_id}", "customer.subscription.deleted", sub, at)


def test_auto_resolved_case_handoff_shows_the_state_that_resolved_it(engine):
    """When the duplicate is canceled the case resolves, and its BILLING STATE and FOLLOW-UP are
    rendered again from that state: no longer "active" and "flagged to be cancelled"."""
    from worker.cases import get_case

    case_id = _duplicate(engine)
    before = get_case(engine, case_id)["handoff"]
    assert "sub_2 active" in before["billing_state"]
    assert "flagged the extra subscription (sub_2) to be cancelled" in before["follow_up"]
    process_event(engine, _deleted("sub_2", T0 + 600))
    doc = get_case(engine, case_id)
    assert doc["status"] == "resolved"
    assert "sub_2 canceled" in doc["handoff"]["billing_state"]
    assert "sub_2 active" not in doc["handoff"]["billing_state"]
    assert "cancelled the extra subscription (sub_2)" in doc["handoff"]["follow_up"]
    assert "flagged" not in doc["handoff"]["follow_up"]


def test_cancellation_billing_ops_executed_opens_no_churn_case(engine):
    """The worker gives the rules what its action audit knows: a subscription an operator
    canceled through billing-ops is no churn; the same deletion without that audit is."""
    from worker.store.db import write_session
    from worker.store.tables import ActionAuditRow

    case_id = _duplicate(engine)
    with write_session(engine) as session:
        session.add(
            ActionAuditRow(
                case_id=case_id,
                at=utc_now(),
                actor="olga",
                action="cancel_subscription",
                target="sub_2",
                idempotency_key=f"billing-ops-case-{case_id}-cancel_subscription-sub_2",
                result="succeeded",
            )  # fmt: skip
        )
    process_event(engine, _deleted("sub_2", T0 + 600))
    assert [c["kind"] for c in list_cases(engine) if c["kind"] == "churn_signal"] == []
    process_event(engine, _deleted("sub_1", T0 + 700))  # nobody here canceled this one
    assert [c["key"] for c in list_cases(engine) if c["kind"] == "churn_signal"] == [
        "churn_signal:sub_1"
    ]


def test_the_api_way_in_keeps_one_timeline_entry_and_refuses_reopening(engine):
    """`set_status` (what the API calls) shares the CLI's transition: a repeated resolve adds
    no entry, and acknowledging the resolved case raises instead of reopening it."""
    from worker.cases import get_case
    from worker.errors import CaseTransitionError

    for n in (1, 2):
        process_event(engine, envelope(f"evt_{n}", "customer.subscription.created",
                      subscription(f"sub_{n}", "cus_1", created=T0 + n), T0 + n))  # fmt: skip
    (case,) = list_cases(engine)
    for _ in range(2):
        doc = set_status(engine, case["id"], "resolved", actor="sam", note="done", now=utc_now())
        assert doc["status"] == "resolved"
    with pytest.raises(CaseTransitionError, match="would reopen it"):
        set_status(engine, case["id"], "acknowledged", actor="sam", note=None, now=utc_now())
    actions = [e["action"] for e in get_case(engine, case["id"])["timeline"]]
    assert actions.count("resolved") == 1 and "acknowledged" not in actions
    assert get_case(engine, case["id"])["status"] == "resolved"
