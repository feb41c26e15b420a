"""rules.versions: the billing reason in today's meaning from payloads of any API version, and
the closest known shape for a version billing-ops does not know."""

from __future__ import annotations

from dataclasses import replace

from rules.model import Invoice, Subscription
from rules.parsing import parse_charge, parse_invoice
from rules.versions import (
    FIRST_INVOICE_WINDOW_SECONDS,
    billing_reason_of,
    closest_known_version,
    is_known_version,
)

T = 1_767_225_600


def invoice(
    invoice_id: str = "in_Renew",
    *,
    reason: str | None = None,
    status: str = "open",
    created: int = T + 100,
    api_version: str | None = "2017-08-15",
) -> Invoice:
    return Invoice(
        id=invoice_id,
        customer_id="cus_A",
        subscription_id="sub_A",
        status=status,
        billing_reason=reason,
        attempt_count=1,
        next_payment_attempt=None,
        amount_due=2900,
        amount_paid=0,
        amount_remaining=2900,
        currency="eur",
        hosted_invoice_url=None,
        charge_id=None,
        payment_intent_id=None,
        created=created,
        customer_email=None,
        customer_name=None,
        event_id="evt_1",
        api_version=api_version,
    )


def subscription(status: str = "active", created: int = T) -> Subscription:
    return Subscription(
        id="sub_A",
        customer_id="cus_A",
        status=status,
        items=(),
        created=created,
        current_period_start=created,
        current_period_end=created + 30 * 86_400,
        trial_start=None,
        trial_end=None,
        cancel_at_period_end=False,
        cancel_at=None,
        canceled_at=None,
        cancellation_reason=None,
        cancellation_feedback=None,
        cancellation_comment=None,
        metadata={},
        latest_invoice_id=None,
        default_payment_method=None,
        event_id="evt_0",
    )


def test_missing_reason_after_an_earlier_paid_invoice_is_a_cycle():
    """localstripe (2017-08-15) omits billing_reason: an invoice after a paid one is a renewal."""
    first = invoice("in_First", status="paid", created=T)
    renewal = invoice(created=T + 60)
    assert billing_reason_of(renewal, [first, renewal], subscription()) == "subscription_cycle"


def test_missing_reason_long_after_the_subscription_is_a_cycle():
    """Without an earlier invoice, one created an hour or more after the subscription renews."""
    renewal = invoice(created=T + FIRST_INVOICE_WINDOW_SECONDS)
    assert billing_reason_of(renewal, [renewal], subscription()) == "subscription_cycle"


def test_missing_reason_with_the_subscription_is_its_first_invoice():
    """An invoice created with its subscription is the first one, not a renewal."""
    first = invoice(created=T + 5)
    assert billing_reason_of(first, [first], subscription()) == "subscription_create"


def test_an_incomplete_subscriptions_invoice_is_its_first():
    """An incomplete subscription has only its first invoice, however late it was created."""
    late = invoice(created=T + 10 * FIRST_INVOICE_WINDOW_SECONDS)
    assert billing_reason_of(late, [late], subscription("incomplete")) == "subscription_create"


def test_an_unpaid_earlier_invoice_does_not_make_a_renewal():
    """Only a paid earlier invoice proves the subscription was already billed."""
    failed_first = invoice("in_First", status="open", created=T)
    second = invoice(created=T + 60)
    reason = billing_reason_of(second, [failed_first, second], subscription())
    assert reason == "subscription_create"


def test_nothing_known_leaves_the_reason_unknown():
    """No subscription and no sibling: nothing tells, so nothing is made up."""
    alone = invoice()
    assert billing_reason_of(alone, [alone], None) is None


def test_pre_2018_10_31_update_on_a_first_invoice_is_a_create():
    """Changelog 2018-10-31: before it, a first invoice says subscription_update."""
    first = invoice(reason="subscription_update", created=T + 5, api_version="2018-02-28")
    assert billing_reason_of(first, [first], subscription()) == "subscription_create"


def test_pre_2018_10_31_update_on_a_later_invoice_stays_an_update():
    """A mid-period change of an existing subscription is still subscription_update."""
    paid = invoice("in_First", status="paid", created=T)
    update = invoice(reason="subscription_update", created=T + 60, api_version="2018-02-28")
    assert billing_reason_of(update, [paid, update], subscription()) == "subscription_update"


def test_update_since_2018_10_31_is_taken_as_sent():
    """From 2018-10-31 on subscription_update never names a first invoice."""
    update = invoice(reason="subscription_update", created=T + 5, api_version="2019-12-03")
    assert billing_reason_of(update, [update], subscription()) == "subscription_update"


def test_a_sent_reason_wins_over_the_derivation():
    """A reason Stripe sent (here a cycle created with the subscription) is never second-guessed."""
    cycle = invoice(reason="subscription_cycle", created=T + 5, api_version="2020-08-27")
    assert billing_reason_of(cycle, [cycle], subscription()) == "subscription_cycle"


def test_old_invoice_booleans_give_the_status():
    """Before 2018-11-08: forgiven is uncollectible, paid is paid, otherwise open."""
    base = {"id": "in_X", "paid": False, "forgiven": False, "closed": True, "date": T}
    assert parse_invoice(base, "evt").status == "open"
    assert parse_invoice({**base, "forgiven": True}, "evt").status == "uncollectible"
    assert parse_invoice({**base, "paid": True}, "evt").status == "paid"


def test_old_invoice_names_date_and_billing():
    """``date`` (before 2019-03-14) and ``billing`` (before 2019-10-17) are read."""
    parsed = parse_invoice({"id": "in_X", "date": T, "billing": "send_invoice"}, "evt")
    assert (parsed.created, parsed.collection_method) == (T, "send_invoice")


def test_known_versions():
    """Stripe's dated versions since 2017 and the named releases are known; others are not."""
    assert is_known_version("2017-08-15")
    assert is_known_version("2025-03-31.basil")
    assert is_known_version("2026-06-24.dahlia")
    assert not is_known_version("2016-07-06")
    assert not is_known_version("2021-01-01")
    assert not is_known_version("banana")
    assert not is_known_version(None)


def test_closest_known_version():
    """An unknown version reads as the newest known one not after it; no date reads as today."""
    assert closest_known_version("2018-03-01") == "2018-02-28"
    assert closest_known_version("2015-01-01") == "2017-01-27"
    assert closest_known_version("banana") == "2026-09-30.endive"
    assert closest_known_version("2027-03-01.fig") == "2026-09-30.endive"
    assert closest_known_version("2024-12-01") == "2024-09-30.acacia"
    assert closest_known_version("2019-12-03") == "2019-12-03"


def test_unknown_old_version_reads_as_the_pre_2018_shape():
    """A 2016 version (not known) is read with the oldest known shape: pre-2018-10-31 meaning."""
    first = replace(invoice(reason="subscription_update", created=T + 5), api_version="2016-07-06")
    assert billing_reason_of(first, [first], subscription()) == "subscription_create"


def test_old_card_source_names_the_charges_payment_method():
    """A charge of the card-source era (no ``payment_method``) is made with its source card:
    the card whose expiry the churn rule checks is found by that id."""
    charge = parse_charge(
        {"id": "ch_X", "source": {"id": "card_X", "object": "card", "last4": "4242"}}, "evt"
    )
    assert (charge.payment_method_id, charge.card_last4) == ("card_X", "4242")
    bank = parse_charge({"id": "ch_Y", "source": {"id": "ba_Y", "object": "bank_account"}}, "evt")
    assert bank.payment_method_id is None
