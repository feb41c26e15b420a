"""Time-driven findings: Stripe's trial notice always counts, and ``next_due`` says when to look.

Stripe facts relied on (named pages):
- customer.subscription.trial_will_end "occurs three days before a subscription's trial period
  is scheduled to end" (API reference, Types of events; Billing > Subscriptions > Trials).
- customer.source.expiring "occurs whenever a card or source will expire at the end of the
  month" (API reference, Types of events); a card works through its expiry month.
- A dispute's evidence_details.due_by is the "date by which evidence must be submitted in order
  to successfully challenge dispute" (API reference, The Dispute object).
"""

from __future__ import annotations

import pytest

from rules import RulesConfig, build_snapshot, evaluate, fold, parse_event
from rules.due import Due, DueReason, clock_event, next_due
from tests.rules.conftest import scenario_names

DAY = 86_400
TRIAL_END = 1_768_435_200  # trial_end of the trial_will_end fixture
CARD_EXPIRES = 1_769_904_000  # 2026-02-01: the 01/2026 card works through January


def trial_notice(payload, seconds_early: int) -> list:
    """A customer without a card, then Stripe's trial notice sent ``seconds_early``."""
    notice = payload("customer.subscription.trial_will_end__no_payment_method")
    notice["created"] = TRIAL_END - 3 * DAY - seconds_early
    return [parse_event(payload("customer.created__no_payment_method")), parse_event(notice)]


def churn_signals(events, now=None, config=None) -> tuple[str, ...]:
    snapshot = build_snapshot(fold(events).values())
    at = snapshot.as_of if now is None else now
    found = evaluate(snapshot, events[-1], at, config or RulesConfig())
    return tuple(s for f in found if f.kind == "churn_signal" for s in f.signals)


@pytest.mark.parametrize("seconds_early", [0, 1, 7, 90, 3600])
def test_stripe_trial_notice_counts_even_when_sent_early(payload, seconds_early):
    """trial_will_end evaluated at its own time opens the signal, seconds or an hour early."""
    events = trial_notice(payload, seconds_early)
    assert churn_signals(events) == ("trial_ending_no_payment_method",)


def test_stripe_trial_notice_counts_with_a_shorter_configured_window(payload):
    """A trial_ending_days below Stripe's three days never hides Stripe's own notice."""
    events = trial_notice(payload, 5)
    config = RulesConfig(trial_ending_days=1)
    assert churn_signals(events, config=config) == ("trial_ending_no_payment_method",)


def test_trial_five_days_away_is_not_yet_a_signal(payload):
    """The leeway stays a leeway: a trial ending in five days is not a signal yet."""
    events = trial_notice(payload, 2 * DAY)
    assert churn_signals(events) == ()


def test_trial_that_ended_is_no_longer_a_trial_signal(payload):
    """At trial_end the trial-ending signal stops (Stripe then invoices, pauses or cancels)."""
    events = trial_notice(payload, 0)
    assert churn_signals(events, now=TRIAL_END) == ()


def test_next_due_after_a_trial_notice_is_the_trial_end(payload):
    """Inside the window the next instant that matters is the trial's end."""
    events = trial_notice(payload, 0)
    snapshot = build_snapshot(fold(events).values())
    assert next_due(snapshot, snapshot.as_of, RulesConfig()) == Due(
        TRIAL_END, DueReason.TRIAL_END, "sub_Trial"
    )


def test_next_due_before_the_window_is_the_window_opening(payload):
    """A trial with a week left is due when the window opens, a day before Stripe's notice."""
    events = trial_notice(payload, 4 * DAY)
    snapshot = build_snapshot(fold(events).values())
    due = next_due(snapshot, snapshot.as_of, RulesConfig())
    assert due == Due(TRIAL_END - 4 * DAY, DueReason.TRIAL_NOTICE, "sub_Trial")


def test_next_due_for_a_card_is_its_notice_then_its_expiry(event):
    """The renewal card is due 30 days before it stops working, then when it does."""
    events = [
        event("customer.subscription.created__annual"),
        event("payment_method.attached__card"),
    ]
    snapshot = build_snapshot(fold(events).values())
    config = RulesConfig()
    first = next_due(snapshot, snapshot.as_of, config)
    assert first is not None and first.reason is DueReason.CARD_EXPIRING
    second = next_due(snapshot, first.at, config)
    assert second is not None and second.reason is DueReason.CARD_EXPIRED
    assert second.at - first.at == 30 * DAY


EVIDENCE_DUE = 1_769_817_600  # evidence_details.due_by of the dispute fixture


def dispute_signals(event, now: int) -> tuple[str, ...]:
    events = [
        event("charge.succeeded__card"),
        event("charge.dispute.created__subscription_canceled"),
    ]
    snapshot = build_snapshot(fold(events).values())
    found = evaluate(snapshot, clock_event(now), now)
    return tuple(s for f in found if f.kind == "dispute" for s in f.signals)


def test_next_due_for_an_open_dispute_is_two_days_before_its_deadline_then_the_deadline(event):
    """A dispute awaiting a response is due two days before evidence_details.due_by, then at it."""
    snapshot = build_snapshot(
        fold([event("charge.dispute.created__subscription_canceled")]).values()
    )
    config = RulesConfig()
    urgent = next_due(snapshot, snapshot.as_of, config)
    assert urgent == Due(EVIDENCE_DUE - 2 * DAY, DueReason.DISPUTE_EVIDENCE_DUE, "dp_Canceled")
    assert next_due(snapshot, urgent.at, config) == Due(
        EVIDENCE_DUE, DueReason.DISPUTE_EVIDENCE_DUE, "dp_Canceled"
    )


@pytest.mark.parametrize(
    ("now", "deadline_signals"),
    [
        (EVIDENCE_DUE - 3 * DAY, ()),
        (EVIDENCE_DUE - 2 * DAY, ("evidence_due_soon",)),
        (EVIDENCE_DUE - 1, ("evidence_due_soon",)),
        (EVIDENCE_DUE, ("evidence_deadline_passed",)),
    ],
)
def test_the_dispute_case_says_how_close_the_evidence_deadline_is(event, now, deadline_signals):
    """Far off nothing is added; within two days "respond today"; after due_by, "passed"."""
    signals = dispute_signals(event, now)
    assert signals[:2] == ("dispute_reason:subscription_canceled", "dispute_status:needs_response")
    assert signals[2:] == deadline_signals


def test_nothing_time_driven_is_never_due(event):
    """A customer alone has nothing that changes with time."""
    snapshot = build_snapshot(fold([event("customer.created__current")]).values())
    assert next_due(snapshot, snapshot.as_of, RulesConfig()) is None


def test_the_clock_event_triggers_no_event_rule(scenario):
    """Evaluating with the clock's event finds exactly the state findings."""
    events = scenario("churn_cancel_missing_features")
    snapshot = build_snapshot(fold(events).values())
    at = snapshot.as_of
    state_only = evaluate(snapshot, clock_event(at), at)
    assert [f.key for f in state_only] == ["churn_signal:sub_Max"]


def _material(findings) -> list[tuple]:
    return [(f.key, f.classification, f.severity, f.signals) for f in findings]


def _time_driven_stories(payload, event, scenario) -> dict[str, list]:
    stories = {name: scenario(name) for name in scenario_names()}
    stories["trial"] = trial_notice(payload, 6 * DAY)
    stories["card"] = [
        event("customer.subscription.created__annual"),
        event("customer.source.expiring__card"),
    ]
    stories["dispute"] = [
        event("charge.succeeded__card"),
        event("charge.dispute.created__subscription_canceled"),
    ]
    return stories


def test_findings_never_change_between_due_times(payload, event, scenario):
    """Walking each story's due times: the findings just before each one equal those after
    the previous one, so the clock misses nothing by sleeping in between."""
    config = RulesConfig()
    for name, events in _time_driven_stories(payload, event, scenario).items():
        snapshot = build_snapshot(fold(events).values())
        at = snapshot.as_of
        for _ in range(12):
            due = next_due(snapshot, at, config)
            if due is None:
                break
            now = evaluate(snapshot, clock_event(at), at, config)
            later = evaluate(snapshot, clock_event(due.at - 1), due.at - 1, config)
            assert _material(now) == _material(later), (name, due)
            at = due.at
