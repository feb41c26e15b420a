"""The projection's unit: one versioned snapshot of one Stripe object.

Stripe delivers at least once and in any order, so the projection keeps, per object, the record
with the greatest ``version``. The version is a total order built only from the event itself, so
the winner does not depend on arrival order, and a redelivery (same version) changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, fields, replace
from typing import Any

from rules.errors import MalformedRecordError
from rules.events import BillingEvent
from rules.model import (
    MODEL_BY_OBJECT_TYPE,
    BillingObject,
    Charge,
    CheckoutSession,
    Customer,
    Discount,
    Dispute,
    Invoice,
    PaymentMethod,
    Subscription,
    SubscriptionItem,
)
from rules.parsing import (
    email_of,
    expanded_products,
    parse_charge,
    parse_checkout_session,
    parse_customer,
    parse_dispute,
    parse_early_fraud_warning,
    parse_failed_payment_intent,
    parse_invoice,
    parse_payment_method,
    parse_product,
    parse_subscription,
)

# A full record of an object always beats a partial hint of it.
FULL = 1
PARTIAL = 0

# Tie-breaks when two events share a second: a later lifecycle state wins.
_SUBSCRIPTION_RANK = {
    "incomplete": 0,
    "trialing": 1,
    "active": 1,
    "past_due": 1,
    "unpaid": 1,
    "paused": 1,
    "incomplete_expired": 2,
    "canceled": 2,
}
_INVOICE_RANK = {"draft": 0, "open": 1, "uncollectible": 2, "void": 3, "paid": 3}
_CHARGE_RANK = {"pending": 0, "failed": 1, "succeeded": 1}
_DISPUTE_RANK = {
    "warning_needs_response": 0,
    "needs_response": 0,
    "warning_under_review": 1,
    "under_review": 1,
    "warning_closed": 2,
    "won": 2,
    "lost": 2,
    "charge_refunded": 2,
    "prevented": 2,
}
_SESSION_RANK = {"open": 0, "complete": 1, "expired": 1}

Version = tuple[int | str, ...]


@dataclass(frozen=True, slots=True)
class ObjectRecord:
    """One object's state as of one event, with the version that orders it against others."""

    object_type: str
    object_id: str
    customer_id: str | None
    email: str | None
    version: Version
    partial: bool
    data: BillingObject

    @property
    def key(self) -> tuple[str, str]:
        """The projection key: one winning record per (object_type, object_id)."""
        return (self.object_type, self.object_id)


def supersedes(new: ObjectRecord, old: ObjectRecord | None) -> bool:
    """True when ``new`` should replace ``old``: a strictly greater version, any arrival order."""
    if old is None:
        return True
    return _comparable(new.version) > _comparable(old.version)


def combine(new: ObjectRecord, old: ObjectRecord | None) -> ObjectRecord:
    """The record to keep when ``new`` arrives and ``old`` is stored: the winner by
    ``supersedes``, carrying what the loser knew that only accumulates.

    A subscription's every ``latest_invoice`` is such a fact (``Subscription.invoice_ids_named``):
    a cancellation's snapshot names only the last invoice, and the earlier snapshot that named
    the first may arrive before or after it; the union is the same in any order and under
    redelivery. ``old`` itself comes back when nothing changes."""
    if old is None:
        return new
    winner, loser = (new, old) if supersedes(new, old) else (old, new)
    if not (isinstance(winner.data, Subscription) and isinstance(loser.data, Subscription)):
        return winner
    named = winner.data.invoice_ids_named | loser.data.invoice_ids_named
    if named == winner.data.invoice_ids_named:
        return winner
    history = tuple(sorted(named - {winner.data.latest_invoice_id}))
    return replace(winner, data=replace(winner.data, earlier_latest_invoices=history))


def _comparable(version: Version) -> tuple[tuple[int, int | str], ...]:
    """Versions compare element-wise; tagging by type keeps a malformed mix from raising."""
    return tuple((0, v) if isinstance(v, int) else (1, str(v)) for v in version)


#: How far past its receipt an event's ``created`` is believed when ordering snapshots. Stripe
#: stamps an event before sending it, so a time further ahead than clock skew is not a real
#: one, and left alone it would win the total order forever (a later real cancellation lost).
MAX_CREATED_AHEAD_SECONDS = 300


def trusted_event_time(event: BillingEvent, received_at: int) -> BillingEvent:
    """``event`` with ``created`` clamped to ``received_at + MAX_CREATED_AHEAD_SECONDS``;
    unchanged (the same object) when it is not that far ahead."""
    limit = received_at + MAX_CREATED_AHEAD_SECONDS
    return event if event.created <= limit else replace(event, created=limit)


def _version(event: BillingEvent, completeness: int, *ranks: int) -> Version:
    return (completeness, event.created, *ranks, event.id)


def _customer_hint(
    event: BillingEvent, customer_id: str | None, email: str | None, name: str | None = None
) -> tuple[ObjectRecord, ...]:
    """A partial customer record carrying an email seen on another object."""
    if not customer_id or not email:
        return ()
    hint = Customer(
        id=customer_id,
        name=name,
        email=email,
        has_default_payment_method=None,
        deleted=False,
        created=None,
        event_id=event.id,
    )
    return (
        ObjectRecord(
            object_type="customer",
            object_id=customer_id,
            customer_id=customer_id,
            email=email,
            version=_version(event, PARTIAL, 0),
            partial=True,
            data=hint,
        ),
    )


def _records_customer(event: BillingEvent) -> tuple[ObjectRecord, ...]:
    customer = parse_customer(event.object, event.id, deleted=event.type == "customer.deleted")
    return (
        ObjectRecord(
            object_type="customer",
            object_id=customer.id,
            customer_id=customer.id,
            email=customer.email,
            version=_version(event, FULL, int(customer.deleted)),
            partial=False,
            data=customer,
        ),
    )


def _records_subscription(event: BillingEvent) -> tuple[ObjectRecord, ...]:
    sub = parse_subscription(event.object, event.id)
    rank = _SUBSCRIPTION_RANK.get(sub.status or "", 0)
    record = ObjectRecord(
        object_type="subscription",
        object_id=sub.id,
        customer_id=sub.customer_id,
        email=None,
        version=_version(event, FULL, rank),
        partial=False,
        data=sub,
    )
    products = (_product_record(event, obj) for obj in expanded_products(event.object))
    return (record, *products)


def _product_record(event: BillingEvent, obj: Mapping[str, Any]) -> ObjectRecord:
    """A product (no customer: products are shared) as of this event."""
    product = parse_product(obj, event.id, deleted=event.type == "product.deleted")
    return ObjectRecord(
        object_type="product",
        object_id=product.id,
        customer_id=None,
        email=None,
        version=_version(event, FULL, int(product.deleted)),
        partial=False,
        data=product,
    )


def _records_product(event: BillingEvent) -> tuple[ObjectRecord, ...]:
    return (_product_record(event, event.object),)


def _records_invoice(event: BillingEvent) -> tuple[ObjectRecord, ...]:
    invoice = parse_invoice(
        event.object,
        event.id,
        requires_action=event.type == "invoice.payment_action_required",
        api_version=event.api_version,
    )
    rank = _INVOICE_RANK.get(invoice.status or "", 0)
    record = ObjectRecord(
        object_type="invoice",
        object_id=invoice.id,
        customer_id=invoice.customer_id,
        email=invoice.customer_email,
        version=_version(event, FULL, rank, invoice.attempt_count),
        partial=False,
        data=invoice,
    )
    hint = _customer_hint(event, invoice.customer_id, invoice.customer_email, invoice.customer_name)
    return (record, *hint)


def _records_charge(event: BillingEvent) -> tuple[ObjectRecord, ...]:
    charge = parse_charge(event.object, event.id)
    rank = _CHARGE_RANK.get(charge.status or "", 0)
    billing = event.object.get("billing_details")
    email = email_of(billing.get("email")) if isinstance(billing, Mapping) else None
    record = ObjectRecord(
        object_type="charge",
        object_id=charge.id,
        customer_id=charge.customer_id,
        email=email,
        version=_version(event, FULL, rank, int(charge.refunded), charge.amount_refunded),
        partial=False,
        data=charge,
    )
    return (record, *_customer_hint(event, charge.customer_id, email))


def _records_failed_payment_intent(event: BillingEvent) -> tuple[ObjectRecord, ...]:
    """payment_intent.payment_failed: a partial record of the failed charge, carrying
    ``last_payment_error.decline_code``; the charge's own charge.failed supersedes it."""
    charge = parse_failed_payment_intent(event.object, event.id, event.created)
    if charge is None:
        return ()
    return (
        ObjectRecord(
            object_type="charge",
            object_id=charge.id,
            customer_id=charge.customer_id,
            email=None,
            version=_version(event, PARTIAL, _CHARGE_RANK["failed"]),
            partial=True,
            data=charge,
        ),
    )


def _records_dispute(event: BillingEvent) -> tuple[ObjectRecord, ...]:
    dispute = parse_dispute(event.object, event.id)
    rank = _DISPUTE_RANK.get(dispute.status or "", 0)
    return (
        ObjectRecord(
            object_type="dispute",
            object_id=dispute.id,
            customer_id=dispute.customer_id,  # else the worker resolves it through charge_id
            email=None,
            version=_version(event, FULL, rank),
            partial=False,
            data=dispute,
        ),
    )


def _records_early_fraud_warning(event: BillingEvent) -> tuple[ObjectRecord, ...]:
    warning = parse_early_fraud_warning(event.object, event.id)
    return (
        ObjectRecord(
            object_type="early_fraud_warning",
            object_id=warning.id,
            customer_id=warning.customer_id,  # else the worker resolves it through charge_id
            email=None,
            version=_version(event, FULL, int(not warning.actionable)),
            partial=False,
            data=warning,
        ),
    )


def _records_checkout_session(event: BillingEvent) -> tuple[ObjectRecord, ...]:
    session = parse_checkout_session(event.object, event.id, event.type)
    rank = _SESSION_RANK.get(session.status or "", 0)
    record = ObjectRecord(
        object_type="checkout_session",
        object_id=session.id,
        customer_id=session.customer_id,
        email=session.customer_email,
        version=_version(event, FULL, rank),
        partial=False,
        data=session,
    )
    return (record, *_customer_hint(event, session.customer_id, session.customer_email))


def _records_payment_method(event: BillingEvent) -> tuple[ObjectRecord, ...]:
    if event.object.get("object") not in ("payment_method", "card"):
        return ()  # bank accounts and other sources have no expiry
    method = parse_payment_method(
        event.object, event.id, detached=event.type == "payment_method.detached"
    )
    return (
        ObjectRecord(
            object_type="payment_method",
            object_id=method.id,
            customer_id=method.customer_id,
            email=None,
            version=_version(event, FULL, int(method.detached)),
            partial=False,
            data=method,
        ),
    )


Parser = Callable[[BillingEvent], tuple[ObjectRecord, ...]]

# The one table: Stripe event type -> the parser that projects it.
EVENT_PARSERS: Mapping[str, Parser] = {
    **dict.fromkeys(
        ("customer.created", "customer.updated", "customer.deleted"), _records_customer
    ),
    **dict.fromkeys(
        (
            "customer.subscription.created",
            "customer.subscription.updated",
            "customer.subscription.deleted",
            "customer.subscription.trial_will_end",
            "customer.subscription.paused",
            "customer.subscription.resumed",
            "customer.subscription.pending_update_applied",
            "customer.subscription.pending_update_expired",
        ),
        _records_subscription,
    ),
    **dict.fromkeys(
        (
            "invoice.created",
            "invoice.finalized",
            "invoice.updated",
            "invoice.paid",
            "invoice.payment_succeeded",
            "invoice.payment_failed",
            "invoice.payment_action_required",
            "invoice.voided",
            "invoice.marked_uncollectible",
            "invoice.overdue",
            "invoice.finalization_failed",
        ),
        _records_invoice,
    ),
    **dict.fromkeys(
        (
            "charge.succeeded",
            "charge.failed",
            "charge.refunded",
            "charge.updated",
            "charge.captured",
            "charge.pending",
            "charge.expired",
        ),
        _records_charge,
    ),
    "payment_intent.payment_failed": _records_failed_payment_intent,
    **dict.fromkeys(
        (
            "charge.dispute.created",
            "charge.dispute.updated",
            "charge.dispute.closed",
            "charge.dispute.funds_withdrawn",
            "charge.dispute.funds_reinstated",
        ),
        _records_dispute,
    ),
    **dict.fromkeys(
        ("radar.early_fraud_warning.created", "radar.early_fraud_warning.updated"),
        _records_early_fraud_warning,
    ),
    **dict.fromkeys(
        (
            "checkout.session.completed",
            "checkout.session.expired",
            "checkout.session.async_payment_failed",
            "checkout.session.async_payment_succeeded",
        ),
        _records_checkout_session,
    ),
    **dict.fromkeys(
        (
            "payment_method.attached",
            "payment_method.updated",
            "payment_method.automatically_updated",
            "payment_method.detached",
            "customer.source.expiring",
        ),
        _records_payment_method,
    ),
    **dict.fromkeys(("product.created", "product.updated", "product.deleted"), _records_product),
}

SUPPORTED_EVENT_TYPES: frozenset[str] = frozenset(EVENT_PARSERS)

# Known event types the projection deliberately skips (their objects carry nothing a rule reads,
# or the same change also arrives as one of the supported events above).
IGNORED_EVENT_TYPES: frozenset[str] = frozenset(
    {
        "invoice.upcoming",  # a preview: no invoice exists yet
        "invoice.sent",
        "invoice.deleted",  # drafts only
        "invoiceitem.created",
        "invoiceitem.updated",
        "invoiceitem.deleted",
        "customer.source.created",
        "customer.source.updated",
        "customer.source.deleted",
        "customer.discount.created",
        "customer.discount.updated",
        "customer.discount.deleted",
        "customer.tax_id.created",
        "customer.tax_id.updated",
        "customer.tax_id.deleted",
        "payment_intent.created",  # charges and invoices carry the payment outcome
        "payment_intent.succeeded",
        "payment_intent.requires_action",
        "payment_intent.processing",
        "payment_intent.canceled",
        "payment_intent.amount_capturable_updated",
        "setup_intent.created",
        "setup_intent.succeeded",
        "setup_intent.setup_failed",
        "setup_intent.requires_action",
        "setup_intent.canceled",
        "charge.refund.updated",  # the charge.refunded event carries amount_refunded
        "refund.created",
        "refund.updated",
        "refund.failed",
        "price.created",
        "price.updated",
        "price.deleted",
        "plan.created",
        "plan.updated",
        "plan.deleted",
        "billing_portal.session.created",
        "billing_portal.configuration.created",
        "billing_portal.configuration.updated",
        "subscription_schedule.created",
        "subscription_schedule.updated",
        "subscription_schedule.released",
        "subscription_schedule.canceled",
        "subscription_schedule.completed",
        "balance.available",
        "payout.created",
        "payout.paid",
    }
)


def records_from_event(event: BillingEvent) -> tuple[ObjectRecord, ...]:
    """The records one event projects; unknown and ignored event types project nothing."""
    parser = EVENT_PARSERS.get(event.type)
    if parser is None or not isinstance(event.object.get("id"), str):
        return ()
    return parser(event)


def _to_json(value: Any) -> Any:
    if isinstance(value, SubscriptionItem | Discount):
        return {f.name: _to_json(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple):
        return [_to_json(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _to_json(v) for k, v in value.items()}
    return value


def record_to_json(record: ObjectRecord) -> dict[str, Any]:
    """A JSON-ready document of the record (lists for tuples, plain dicts for models)."""
    return {
        "object_type": record.object_type,
        "object_id": record.object_id,
        "customer_id": record.customer_id,
        "email": record.email,
        "version": list(record.version),
        "partial": record.partial,
        "data": {f.name: _to_json(getattr(record.data, f.name)) for f in fields(record.data)},
    }


def _model_from_json(object_type: str, doc: Mapping[str, Any]) -> BillingObject:
    model = MODEL_BY_OBJECT_TYPE[object_type]
    values: dict[str, Any] = {}
    for f in fields(model):
        if f.name not in doc and f.default is not MISSING:
            continue  # a field added later, with a default: records stored before it still load
        if f.name not in doc:
            if f.default is not MISSING:  # a field added later: older rows keep its default
                continue
            raise MalformedRecordError(f"{object_type} record is missing data field {f.name!r}")
        values[f.name] = doc[f.name]
    if model is Subscription:
        values["items"] = tuple(SubscriptionItem(**item) for item in values["items"])
        values["metadata"] = dict(values["metadata"] or {})
        values["discounts"] = tuple(_discount_from_json(d) for d in values.get("discounts") or ())
        values["earlier_latest_invoices"] = tuple(values.get("earlier_latest_invoices") or ())
    return model(**values)


def _discount_from_json(doc: Mapping[str, Any]) -> Discount:
    products = doc.get("applies_to_products")
    return Discount(**{**doc, "applies_to_products": None if products is None else tuple(products)})


def record_from_json(doc: Mapping[str, Any]) -> ObjectRecord:
    """Rebuild a record stored with ``record_to_json``; raises MalformedRecordError if unusable."""
    try:
        object_type = doc["object_type"]
        if object_type not in MODEL_BY_OBJECT_TYPE:
            raise MalformedRecordError(f"unknown record object_type {object_type!r}")
        return ObjectRecord(
            object_type=object_type,
            object_id=doc["object_id"],
            customer_id=doc["customer_id"],
            email=doc["email"],
            version=tuple(doc["version"]),
            partial=bool(doc["partial"]),
            data=_model_from_json(object_type, doc["data"]),
        )
    except (KeyError, TypeError) as exc:
        raise MalformedRecordError(f"record document is malformed: {exc}") from exc


__all__ = [
    "EVENT_PARSERS",
    "IGNORED_EVENT_TYPES",
    "SUPPORTED_EVENT_TYPES",
    "Charge",
    "CheckoutSession",
    "Customer",
    "Dispute",
    "Invoice",
    "ObjectRecord",
    "PaymentMethod",
    "Subscription",
    "combine",
    "record_from_json",
    "record_to_json",
    "records_from_event",
    "supersedes",
    "trusted_event_time",
]
