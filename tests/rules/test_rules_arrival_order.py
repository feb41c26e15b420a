"""Arrival order: the cases a scenario leaves do not depend on the order its events arrive in.

Stripe does not deliver events in the order it generated them ("Webhooks",
docs.stripe.com/webhooks#event-ordering) and several workers process them at once, so every
intermediate state is evaluated and may open cases. These tests run the case lifecycle over
each delivery (``tests.rules.lifecycle``), not over the folded end state only.
"""

from __future__ import annotations

import itertools
import random

from rules import parse_event
from tests.rules.lifecycle import cases_after, every_case, open_cases

#: A paid 2017-08-15 subscription (localstripe's shape: no billing_reason) whose renewal
#: fails, then canceled: churn and the failed renewal, never an incomplete checkout.
CANCELED_RENEWAL = "failed_renewal_then_canceled_localstripe_2017"
SEEDS = range(6)


def test_a_cancellation_evaluated_before_the_first_payment_arrived_is_still_churn(scenario):
    """The first invoice's ``invoice.payment_succeeded`` arrives last (after the renewal's
    failure and the cancellation): exactly the cases of in-order delivery, no
    ``incomplete_checkout`` opened on the way and the churn case open."""
    events = scenario(CANCELED_RENEWAL)
    first_paid = next(e for e in events if e.type == "invoice.payment_succeeded")
    late = [e for e in events if e is not first_paid] + [first_paid]
    expected = [("churn_signal:sub_Remy", "open"), ("failed_renewal:in_RemyRenew", "open")]
    assert every_case(cases_after(events)) == expected
    assert every_case(cases_after(late)) == expected


def test_every_arrival_order_of_the_canceled_renewal_leaves_the_in_order_cases(scenario):
    """All 5,040 orders of its seven events leave the in-order open cases (the churn case
    included: its cancellation is drawn again when the first payment shows up late)."""
    events = scenario(CANCELED_RENEWAL)
    expected = open_cases(cases_after(events))
    for order in itertools.permutations(events):
        assert open_cases(cases_after(order)) == expected, [e.id for e in order]


def test_every_arrival_order_of_a_canceled_renewal_stamped_in_one_second_keeps_the_churn(
    scenario_payloads,
):
    """localstripe stamps a whole flow with one second (``created``, ``ended_at``), and Stripe's
    timestamps are whole seconds too: an event from the same second as the cancellation may
    have been generated before it. All 5,040 orders still leave the churn case open (it failed
    in 756 orders while an event of the cancellation's own second was read as "after the
    end" and never drew the churn again)."""
    events = [
        parse_event(_stamped(payload, 1767225600))
        for payload in scenario_payloads(CANCELED_RENEWAL)
    ]
    expected = [
        ("churn_signal:sub_Remy", "unclassified", "medium"),
        ("failed_renewal:in_RemyRenew", "failed_payment", "high"),
    ]
    assert open_cases(cases_after(events)) == expected
    for order in itertools.permutations(events):
        assert open_cases(cases_after(order)) == expected, [e.id for e in order]


def _stamped(payload: dict, second: int) -> dict:
    """The payload with its event time and its object's end times all in ``second``."""
    obj = payload["data"]["object"]
    for field in ("ended_at", "canceled_at"):
        if obj.get(field) is not None:
            obj[field] = second
    return {**payload, "created": second}


def test_a_failed_invoice_arriving_after_the_past_due_subscription_is_the_same_case(scenario):
    """The subscription's ``past_due`` update is processed before the renewal invoice's
    events: its failed_renewal case is the one the invoice's finding then updates (both keyed
    on the invoice), not a second case beside a resolved one."""
    events = scenario("failed_renewal")
    past_due = next(e for e in events if e.type == "customer.subscription.updated")
    early = [events[0], events[1], past_due] + [e for e in events[2:] if e is not past_due]
    assert (
        every_case(cases_after(early))
        == every_case(cases_after(events))
        == [("failed_renewal:in_FayRenew", "open")]
    )


def test_each_scenario_reversed_and_shuffled_leaves_the_in_order_cases(scenario_name, scenario):
    """Reversed, and shuffled with redeliveries (seeded), each scenario leaves the open cases
    of in-order delivery."""
    events = scenario(scenario_name)
    expected = open_cases(cases_after(events))
    assert open_cases(cases_after(reversed(events))) == expected, "reversed"
    for seed in SEEDS:
        rng = random.Random(seed)
        stream = events + rng.sample(events, k=len(events) // 2)
        rng.shuffle(stream)
        assert open_cases(cases_after(stream)) == expected, f"seed {seed}"
