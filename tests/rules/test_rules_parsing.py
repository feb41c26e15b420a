"""Both API shapes parse to the same record fields (old 2020-08-27 and current 2025+)."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest

from rules import (
    IGNORED_EVENT_TYPES,
    SUPPORTED_EVENT_TYPES,
    parse_event,
    record_from_json,
    record_to_json,
    records_from_event,
)
from rules.errors import MalformedRecordError
from rules.model import Charge


def only(records, object_type):
    """The single record of one object type among an event's records."""
    (record,) = [r for r in records if r.object_type == object_type]
    return record


def test_customer_current_shape(event):
    """A customer's email is lower-cased and invoice_settings.default_payment_method counts."""
    record = only(records_from_event(event("customer.created__current")), "customer")
    assert record.partial is False
    assert record.email == "ada.lovelace@example.com"
    assert record.data.has_default_payment_method is True
    assert record.data.name == "Ada Lovelace"
    assert record.data.deleted is False


def test_customer_old_default_source(event):
    """An old-API customer whose only payment method is default_source has one on file."""
    customer = records_from_event(event("customer.updated__old_default_source"))[0].data
    assert customer.has_default_payment_method is True


def test_customer_without_payment_method(event):
    """A customer with neither default_payment_method nor default_source has none on file."""
    customer = records_from_event(event("customer.created__no_payment_method"))[0].data
    assert customer.has_default_payment_method is False


def test_customer_deleted(event):
    """customer.deleted marks the record deleted."""
    assert records_from_event(event("customer.deleted__basic"))[0].data.deleted is True


def test_subscription_old_plan_shape(event):
    """An old subscription reads periods from the top level and the price from its items."""
    sub = only(records_from_event(event("customer.subscription.created__old_plan")), "subscription")
    data = sub.data
    assert data.customer_id == "cus_Old"
    assert data.current_period_start == 1767225600
    assert data.current_period_end == 1767225600 + 30 * 86400
    (item,) = data.items
    assert (item.product_id, item.unit_amount, item.interval, item.quantity) == (
        "prod_Pro",
        2900,
        "month",
        1,
    )
    assert item.current_period_start is None
    assert data.cancellation_feedback is None


def test_subscription_with_only_a_plan(payload):
    """A very old subscription without items is read from its plan and quantity."""
    doc = payload("customer.subscription.created__old_plan")
    del doc["data"]["object"]["items"]
    doc["data"]["object"]["quantity"] = 2
    data = records_from_event(parse_event(doc))[0].data
    (item,) = data.items
    assert (item.price_id, item.unit_amount, item.quantity) == ("plan_ProMonthly", 2900, 2)
    assert data.monthly_amount_minor == 5800


def test_subscription_current_shape_reduces_expanded_objects(event):
    """Expanded customer, latest_invoice and payment method become ids; periods come from items."""
    data = records_from_event(event("customer.subscription.created__current_expanded"))[0].data
    assert data.customer_id == "cus_Ada"
    assert data.latest_invoice_id == "in_CurFirst"
    assert data.default_payment_method == "pm_AdaVisa"
    assert data.current_period_start == 1767225600
    assert data.current_period_end == 1767225600 + 30 * 86400
    assert data.items[0].price_id == "price_ProMonthly"
    assert data.is_live and data.product_ids == frozenset({"prod_Pro"})


def test_subscription_monthly_amount_normalises_year_and_quantity(event):
    """Yearly prices count /12 toward monthly revenue; quantity multiplies."""
    annual = records_from_event(event("customer.subscription.created__annual"))[0].data
    team = records_from_event(event("customer.subscription.created__team_seats"))[0].data
    assert annual.monthly_amount_minor == 29000 // 12
    assert annual.is_annual
    assert team.monthly_amount_minor == 5 * 2900
    assert team.max_quantity == 5


def test_subscription_cancellation_details(event):
    """cancellation_details fill reason, feedback and comment."""
    data = records_from_event(event("customer.subscription.updated__cancel_at_period_end"))[0].data
    assert data.cancel_at_period_end is True
    assert data.cancellation_feedback == "missing_features"
    assert data.cancellation_reason == "cancellation_requested"
    assert data.cancellation_comment == "We need a Gantt view."


def test_invoice_current_shape(event):
    """A current invoice finds its subscription under parent; absent payment links are None."""
    records = records_from_event(event("invoice.payment_failed__current_renewal"))
    invoice = only(records, "invoice").data
    assert invoice.subscription_id == "sub_Cur"
    assert invoice.charge_id is None and invoice.payment_intent_id is None
    assert (invoice.status, invoice.billing_reason, invoice.attempt_count) == (
        "open",
        "subscription_cycle",
        1,
    )
    assert invoice.next_payment_attempt == 1767225600 + 3 * 86400
    assert invoice.amount_remaining == 2900


def test_invoice_emits_partial_customer_hint(event):
    """An invoice with customer_email also yields a partial customer record carrying it."""
    hint = only(records_from_event(event("invoice.payment_failed__current_renewal")), "customer")
    assert hint.partial is True
    assert hint.object_id == "cus_Ada"
    assert hint.email == "ada@example.com"
    assert hint.data.has_default_payment_method is None


def test_invoice_old_shape(event):
    """An old invoice reads invoice.subscription and .charge; an expanded payment_intent -> id."""
    invoice = only(records_from_event(event("invoice.payment_failed__old_renewal")), "invoice").data
    assert invoice.subscription_id == "sub_Old"
    assert invoice.charge_id == "ch_OldFailed"
    assert invoice.payment_intent_id == "pi_OldRenewal"


def test_invoice_payment_intent_from_payments_list(event):
    """A current paid invoice finds its payment intent in the payments list."""
    invoice = records_from_event(event("invoice.paid__current_payments"))[0].data
    assert invoice.payment_intent_id == "pi_CurFirst"
    assert invoice.amount_paid == 2900 and invoice.amount_remaining == 0


def test_invoice_expanded_charge(event):
    """An expanded invoice.charge is reduced to its id."""
    invoice = records_from_event(event("invoice.payment_succeeded__old_expanded_charge"))[0].data
    assert invoice.charge_id == "ch_OldFirst"


def test_invoice_subscription_from_lines(payload):
    """With no top-level or parent subscription, the line items' subscription is used."""
    doc = payload("invoice.payment_failed__current_renewal")
    del doc["data"]["object"]["parent"]
    invoice = records_from_event(parse_event(doc))[0].data
    assert invoice.subscription_id == "sub_Cur"


def test_charge_current_card(event):
    """A current charge reads card fields from payment_method_details.card only."""
    record = only(records_from_event(event("charge.succeeded__card")), "charge")
    charge = record.data
    assert (charge.card_brand, charge.card_last4, charge.card_exp_month, charge.card_exp_year) == (
        "visa",
        "4242",
        12,
        2030,
    )
    assert charge.card_fingerprint == "fp_AdaVisa4242"
    assert charge.payment_intent_id == "pi_CurFirst"
    assert charge.invoice_id is None
    assert record.email == "ada@example.com"


def test_charge_old_source_card(event):
    """An old charge reads its card from the source object and links its invoice."""
    charge = only(records_from_event(event("charge.succeeded__old_source")), "charge").data
    assert (charge.card_fingerprint, charge.card_exp_month, charge.card_exp_year) == (
        "fp_OttoVisa",
        2,
        2026,
    )
    assert charge.invoice_id == "in_OldFirst"


def test_charge_model_never_holds_a_card_number():
    """The Charge model has no field that could hold a full card number or CVC."""
    names = {f.name for f in fields(Charge)}
    assert not names & {"number", "card_number", "cvc", "pan"}


def test_charge_refunded(event):
    """charge.refunded carries refunded and amount_refunded."""
    charge = records_from_event(event("charge.refunded__full"))[0].data
    assert charge.refunded is True and charge.amount_refunded == 2900


def test_dispute_expanded_charge(event):
    """A dispute's expanded charge becomes its id; the evidence deadline is read."""
    record = records_from_event(event("charge.dispute.created__duplicate_expanded_charge"))[0]
    assert record.customer_id is None
    assert record.data.charge_id == "ch_CurFirst"
    assert record.data.reason == "duplicate"
    assert record.data.evidence_due_by == 1767225600 + 30 * 86400


def test_checkout_current_shape(event):
    """A checkout session's email comes from customer_details, lower-cased."""
    records = records_from_event(event("checkout.session.completed__subscription"))
    session = only(records, "checkout_session")
    assert session.email == "ada@example.com"
    assert (session.data.status, session.data.subscription_id) == ("complete", "sub_Cur")
    assert only(records, "customer").partial is True


def test_checkout_old_shape_without_status(event):
    """An old session without status gets it from the event type; email from customer_email."""
    session = only(
        records_from_event(event("checkout.session.completed__old_no_status")), "checkout_session"
    )
    assert session.data.status == "complete"
    assert session.email == "old@example.com"


def test_guest_checkout_has_no_customer(event):
    """A guest session has customer_id None and yields no customer hint."""
    records = records_from_event(event("checkout.session.expired__guest"))
    assert [r.object_type for r in records] == ["checkout_session"]
    assert records[0].customer_id is None
    assert records[0].data.status == "expired"


def test_source_expiring_and_payment_methods(event):
    """customer.source.expiring and payment_method.* carry card expiry; detach clears the owner."""
    expiring = records_from_event(event("customer.source.expiring__card"))[0].data
    assert (expiring.id, expiring.customer_id, expiring.card_exp_month) == (
        "card_AdaOld",
        "cus_Ada",
        1,
    )
    attached = records_from_event(event("payment_method.attached__card"))[0].data
    detached = records_from_event(event("payment_method.detached__card"))[0].data
    assert attached.detached is False and attached.card_exp_year == 2031
    assert detached.detached is True and detached.customer_id is None


def test_unknown_and_ignored_types_project_nothing(event, payload):
    """Unknown and ignored event types yield no records."""
    assert records_from_event(event("invoice.upcoming__ignored")) == ()
    doc = payload("customer.created__current")
    doc["type"] = "radar.value_list.created"
    assert records_from_event(parse_event(doc)) == ()


def test_supported_and_ignored_types_are_disjoint():
    """An event type is either projected or deliberately ignored, never both."""
    assert not SUPPORTED_EVENT_TYPES & IGNORED_EVENT_TYPES
    assert "invoice.payment_failed" in SUPPORTED_EVENT_TYPES


def test_every_fixture_is_known(event_name, event):
    """Every fixture's type is supported or ignored; supported ones project their object."""
    ev = event(event_name)
    assert ev.type in SUPPORTED_EVENT_TYPES | IGNORED_EVENT_TYPES
    records = records_from_event(ev)
    if ev.type in SUPPORTED_EVENT_TYPES:
        # payment_intent.payment_failed projects the failed charge it names, not the intent
        projected = (ev.object.get("last_payment_error") or {}).get("charge") or ev.object["id"]
        assert records[0].object_id == projected
        assert all(r.version[-1] == ev.id for r in records)


def test_record_json_round_trip(event_name, event):
    """record_from_json(record_to_json(r)) == r, and the document is plain JSON."""
    for record in records_from_event(event(event_name)):
        doc = json.loads(json.dumps(record_to_json(record)))
        assert record_from_json(doc) == record


def test_record_from_json_rejects_garbage(event):
    """A document that is not a stored record raises MalformedRecordError."""
    doc = record_to_json(records_from_event(event("charge.succeeded__card"))[0])
    with pytest.raises(MalformedRecordError):
        record_from_json({**doc, "object_type": "plan"})
    del doc["data"]["amount"]
    with pytest.raises(MalformedRecordError):
        record_from_json(doc)
