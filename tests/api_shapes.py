"""Down-convert a Stripe event from today's shape to the shape an older API version sends.

Tests only: ``test_rules_api_versions`` replays every scenario folder in each ``OLDER_SHAPES``
version and expects the same cases, so each fallback in ``rules.versions`` (the version table)
is exercised by every story, not only by the one fixture written for it.

Each ``Change`` undoes one documented difference, newest first; converting a payload of
version S to an older target T applies the changes whose version V satisfies T < V <= S, so a
folder recorded in an old shape is only converted further down (never up). Pure: payloads in,
new payloads out. Objects of the eras follow Stripe's published objects of the time (see
tests/fixtures/scenarios/README.md, "The same stories in older API versions").
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rules.versions import version_date

Obj = dict[str, Any]

#: The older shapes every scenario is replayed in (and why each one).
OLDER_SHAPES: tuple[str, ...] = (
    "2019-12-03",  # collection_method named so; no price, no parent, no payments, top periods
    "2018-02-28",  # plus: billing, date, no status (paid/forgiven/closed), update = create
    "2017-08-15",  # plus: no billing_reason at all (as localstripe sends it), card source
)


@dataclass(frozen=True, slots=True)
class Change:
    """One difference between a version and the one before it, and how to undo it."""

    version: str  # the first version that has today's form
    entry: str  # the changelog entry (or era) that names it
    undo: Callable[[str, Obj, bool], None]  # (object type, object, is_previous_attributes)


def _list_data(value: Any) -> list[Obj]:
    if isinstance(value, dict):
        value = value.get("data")
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _undo_clover_discounts(kind: str, obj: Obj, partial: bool) -> None:
    """2025-09-30.clover: ``discount.source.coupon`` was ``discount.coupon``."""
    entries = [obj.get("discount"), *(obj.get("discounts") or [])]
    for item in _list_data(obj.get("items")):
        entries += item.get("discounts") or []
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("source"), dict):
            coupon = entry.pop("source").get("coupon")
            if coupon is not None:
                entry["coupon"] = coupon


def _undo_basil_parent_and_payments(kind: str, obj: Obj, partial: bool) -> None:
    """2025-03-31.basil: ``parent.subscription_details`` was ``invoice.subscription``; the
    ``payments`` list was ``invoice.charge`` / ``invoice.payment_intent`` (and ``paid``)."""
    if kind != "invoice" or partial:
        return
    parent = obj.pop("parent", None) or {}
    details = parent.get("subscription_details") or {}
    obj["subscription"] = details.get("subscription")
    for line in _list_data(obj.get("lines")):
        line_parent = line.pop("parent", None) or {}
        item = line_parent.get("subscription_item_details") or {}
        line["subscription"] = item.get("subscription")
        line["subscription_item"] = item.get("subscription_item")
        line["type"] = "subscription" if item else "invoiceitem"
    payments = _list_data(obj.pop("payments", None))
    payments.sort(key=lambda p: p.get("status") != "paid")
    payment = payments[0].get("payment", {}) if payments else {}
    obj.setdefault("charge", payment.get("charge"))
    obj.setdefault("payment_intent", payment.get("payment_intent"))
    obj["paid"] = obj.get("status") == "paid"


def _undo_basil_item_periods(kind: str, obj: Obj, partial: bool) -> None:
    """2025-03-31.basil: item-level ``current_period_*`` were the subscription's own."""
    if kind != "subscription":
        return
    items = _list_data(obj.get("items"))
    for key in ("current_period_start", "current_period_end"):
        values = [item.pop(key) for item in items if isinstance(item.get(key), int)]
        if values and key not in obj:
            obj[key] = min(values)


def _plan_of(price: Obj) -> Obj:
    recurring = price.get("recurring") or {}
    return {
        "id": price.get("id"),
        "object": "plan",
        "amount": price.get("unit_amount"),
        "billing_scheme": price.get("billing_scheme", "per_unit"),
        "currency": price.get("currency"),
        "interval": recurring.get("interval"),
        "interval_count": recurring.get("interval_count", 1),
        "product": price.get("product"),
        "transform_usage": price.get("transform_quantity"),
        "usage_type": recurring.get("usage_type", "licensed"),
    }


def _undo_prices(kind: str, obj: Obj, partial: bool) -> None:
    """Objects before the Prices API (2020) carry a ``plan`` on each item, and a one-item
    subscription its ``plan`` and ``quantity`` at the top (the 2017–2019 Subscription object)."""
    if kind != "subscription":
        return
    items = _list_data(obj.get("items"))
    for item in items:
        price = item.pop("price", None)
        if isinstance(price, dict) and not isinstance(item.get("plan"), dict):
            item["plan"] = _plan_of(price)
    if len(items) == 1 and isinstance(items[0].get("plan"), dict):
        obj.setdefault("plan", items[0]["plan"])
        obj.setdefault("quantity", items[0].get("quantity", 1))


def _undo_collection_method(kind: str, obj: Obj, partial: bool) -> None:
    """2019-10-17 "Renames billing to collection_method on invoices, subscriptions, and
    subscription schedules"."""
    if kind in ("invoice", "subscription") and "collection_method" in obj:
        obj["billing"] = obj.pop("collection_method")


def _undo_invoice_created(kind: str, obj: Obj, partial: bool) -> None:
    """2019-03-14 "Renames the date field for invoices to created"."""
    if kind == "invoice" and "created" in obj:
        obj["date"] = obj.pop("created")


def _undo_invoice_status(kind: str, obj: Obj, partial: bool) -> None:
    """2018-11-08 "Replaces the forgiven field with a new uncollectible status for invoices"
    and "…auto_advance": an invoice of the era says ``paid``, ``forgiven`` and ``closed``.
    ``void`` has no expression in those booleans, so a voided invoice keeps its ``status``."""
    if kind != "invoice" or partial:
        return
    status = obj.get("status")
    auto_advance = obj.pop("auto_advance", True)
    obj["paid"] = status == "paid"
    obj["forgiven"] = status == "uncollectible"
    obj["closed"] = status in ("paid", "uncollectible", "void") or auto_advance is False
    if status != "void":
        obj.pop("status", None)


def _undo_subscription_create(kind: str, obj: Obj, partial: bool) -> None:
    """2018-10-31 "The billing_reason of the first invoice of a subscription is now
    subscription_create": before it, that invoice says ``subscription_update``."""
    if kind == "invoice" and obj.get("billing_reason") == "subscription_create":
        obj["billing_reason"] = "subscription_update"


def _undo_billing_reason(kind: str, obj: Obj, partial: bool) -> None:
    """The 2017-08-15 invoice as localstripe (which speaks 2017-08-15) delivers it: no
    ``billing_reason``."""
    if kind == "invoice":
        obj.pop("billing_reason", None)


def _undo_payment_methods(kind: str, obj: Obj, partial: bool) -> None:
    """Before Payment Methods (2018–2019): a charge names its card in ``source`` (a ``card``
    object), a customer its card in ``default_source``."""
    if kind == "charge" and not partial:
        details = (obj.pop("payment_method_details", None) or {}).get("card") or {}
        method = obj.pop("payment_method", None)
        if details and not isinstance(obj.get("source"), dict):
            obj["source"] = {
                "id": method or f"card_{obj.get('id')}",
                "object": "card",
                "customer": obj.get("customer"),
                **{k: details.get(k) for k in ("brand", "exp_month", "exp_year", "fingerprint")},
                "last4": details.get("last4"),
            }
    if kind == "customer" and not partial:
        settings = obj.pop("invoice_settings", None) or {}
        if settings.get("default_payment_method") and not obj.get("default_source"):
            obj["default_source"] = settings["default_payment_method"]


#: Newest first. The Prices and Payment Methods rows are eras, not single changelog entries:
#: they are dated at the first version after the last shape that lacked them.
CHANGES: tuple[Change, ...] = (
    Change("2025-09-30", "2025-09-30.clover discounts: source.coupon", _undo_clover_discounts),
    Change("2025-03-31", "basil: parent field, invoice payments", _undo_basil_parent_and_payments),
    Change("2025-03-31", "basil: item-level billing periods", _undo_basil_item_periods),
    Change("2020-03-02", "Prices API (items carry price)", _undo_prices),
    Change("2019-10-17", "Renames billing to collection_method", _undo_collection_method),
    Change("2019-03-14", "Renames the date field for invoices to created", _undo_invoice_created),
    Change("2019-02-11", "Payment Methods (payment_method_details)", _undo_payment_methods),
    Change("2018-11-08", "uncollectible status, auto_advance", _undo_invoice_status),
    Change("2018-10-31", "billing_reason subscription_create", _undo_subscription_create),
    Change("2018-02-28", "billing_reason (none in localstripe's)", _undo_billing_reason),
)


def to_version(payload: Obj, target: str) -> Obj:
    """A copy of the event ``payload`` in the shape of API version ``target``: every change
    newer than ``target`` and not newer than the payload's own version is undone."""
    source = version_date(payload.get("api_version")) or "9999-12-31"
    event = copy.deepcopy(payload)
    data = event["data"]
    kind = data["object"].get("object", "")
    for change in CHANGES:
        if target < change.version <= source:
            change.undo(kind, data["object"], False)
            if isinstance(data.get("previous_attributes"), dict):
                change.undo(kind, data["previous_attributes"], True)
    if target < source:
        event["api_version"] = target
    return event
