"""Read Stripe objects of any API version into the frozen models.

Stripe moved fields between versions (``plan`` -> ``price``, top-level periods -> item periods,
``invoice.subscription`` -> ``parent.subscription_details``, ``invoice.charge`` -> ``payments``);
each reader here accepts both shapes, and reduces expanded objects to their ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rules.model import (
    Charge,
    CheckoutSession,
    Customer,
    Discount,
    Dispute,
    EarlyFraudWarning,
    Invoice,
    PaymentMethod,
    Product,
    Subscription,
    SubscriptionItem,
)

Obj = Mapping[str, Any]


def ref_id(value: Any) -> str | None:
    """The id of a reference that may be a plain id or an expanded object."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, Mapping):
        inner = value.get("id")
        return inner if isinstance(inner, str) and inner else None
    return None


def opt_int(value: Any) -> int | None:
    """An integer field, or None when absent or not an integer."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def opt_str(value: Any) -> str | None:
    """A non-empty string field, or None."""
    return value if isinstance(value, str) and value else None


def email_of(value: Any) -> str | None:
    """A normalised (stripped, lower-cased) email, or None."""
    text = opt_str(value)
    if text is None:
        return None
    return text.strip().lower() or None


def _mapping(value: Any) -> Obj:
    return value if isinstance(value, Mapping) else {}


def _list_data(value: Any) -> list[Obj]:
    """The ``data`` of a Stripe list object (or a bare list), keeping only objects."""
    if isinstance(value, Mapping):
        value = value.get("data")
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def parse_customer(obj: Obj, event_id: str, *, deleted: bool = False) -> Customer:
    """A customer from ``customer.*`` events; ``deleted`` is set by customer.deleted."""
    settings = obj.get("invoice_settings")
    has_pm: bool | None = None
    if isinstance(settings, Mapping) or "default_source" in obj:
        has_pm = bool(ref_id(_mapping(settings).get("default_payment_method"))) or bool(
            ref_id(obj.get("default_source"))
        )
    return Customer(
        id=str(obj["id"]),
        name=opt_str(obj.get("name")),
        email=email_of(obj.get("email")),
        has_default_payment_method=has_pm,
        deleted=deleted or obj.get("deleted") is True,
        created=opt_int(obj.get("created")),
        event_id=event_id,
        default_payment_method_id=ref_id(_mapping(settings).get("default_payment_method")),
        default_source_id=ref_id(obj.get("default_source")),
    )


def parse_subscription_item(item: Obj, fallback: Obj | None = None) -> SubscriptionItem:
    """One item from its ``price`` (current) or ``plan`` (old); periods from the item if any.

    Price (docs.stripe.com/api/prices/object): ``recurring.usage_type``, ``billing_scheme``,
    ``transform_quantity``; the old Plan object has ``usage_type``, ``billing_scheme`` and
    ``transform_usage`` at its top level.
    """
    price = _mapping(item.get("price")) or _mapping(item.get("plan"))
    recurring = _mapping(price.get("recurring"))
    unit_amount = opt_int(price.get("unit_amount"))
    if unit_amount is None:
        unit_amount = opt_int(price.get("amount"))  # old Plan objects call it ``amount``
    quantity = opt_int(item.get("quantity"))
    if quantity is None and fallback is not None:
        quantity = opt_int(fallback.get("quantity"))
    transform = _mapping(price.get("transform_quantity")) or _mapping(price.get("transform_usage"))
    return SubscriptionItem(
        price_id=ref_id(price.get("id")),
        product_id=ref_id(price.get("product")),
        interval=opt_str(recurring.get("interval")) or opt_str(price.get("interval")),
        interval_count=opt_int(recurring.get("interval_count"))
        or opt_int(price.get("interval_count"))
        or 1,
        unit_amount=unit_amount,
        currency=opt_str(price.get("currency")),
        quantity=1 if quantity is None else quantity,
        current_period_start=opt_int(item.get("current_period_start")),
        current_period_end=opt_int(item.get("current_period_end")),
        usage_type=opt_str(recurring.get("usage_type")) or opt_str(price.get("usage_type")),
        billing_scheme=opt_str(price.get("billing_scheme")),
        transform_divide_by=opt_int(transform.get("divide_by")),
        transform_round=opt_str(transform.get("round")),
    )


def _discount(entry: Obj, products: tuple[str, ...] | None = None) -> Discount:
    """A discount's terms from its coupon: ``discount.coupon`` (before 2025-09-30.clover) or
    ``discount.source.coupon`` (since; an id unless expanded). docs.stripe.com/api/discounts,
    docs.stripe.com/api/coupons/object."""
    coupon = entry.get("coupon")
    if not isinstance(coupon, Mapping):
        coupon = _mapping(entry.get("source")).get("coupon")
    if not isinstance(coupon, Mapping):
        return Discount(id=ref_id(entry.get("id")), known=False)
    percent = coupon.get("percent_off")
    applies = _mapping(coupon.get("applies_to")).get("products")
    restricted = (
        tuple(p for p in applies if isinstance(p, str)) if isinstance(applies, list) else None
    )
    return Discount(
        id=ref_id(entry.get("id")),
        known=True,
        percent_off=str(percent)
        if isinstance(percent, int | float) and not isinstance(percent, bool)
        else None,
        amount_off=opt_int(coupon.get("amount_off")),
        currency=opt_str(coupon.get("currency")),
        duration=opt_str(coupon.get("duration")),
        applies_to_products=products if products is not None else restricted,
    )


def parse_discounts(obj: Obj) -> tuple[Discount, ...]:
    """A subscription's discounts: ``discount`` (old, one), ``discounts`` (ids, or objects when
    expanded), and item-level ``discounts``; the same discount named twice counts once."""
    found: dict[str, Discount] = {}
    unnamed: list[Discount] = []

    def add(entry: Any, products: tuple[str, ...] | None = None) -> None:
        if isinstance(entry, str) and entry:
            found.setdefault(entry, Discount(id=entry, known=False))
        elif isinstance(entry, Mapping):
            discount = _discount(entry, products)
            if discount.id is None:
                unnamed.append(discount)
            elif discount.known or discount.id not in found:
                found[discount.id] = discount

    add(obj.get("discount"))
    for entry in obj.get("discounts") or ():
        add(entry)
    for item in _list_data(obj.get("items")):
        product = ref_id(_mapping(item.get("price") or item.get("plan")).get("product"))
        for entry in item.get("discounts") or ():
            add(entry, (product,) if product else ())
    return (*found.values(), *unnamed)


def parse_subscription_items(obj: Obj) -> tuple[SubscriptionItem, ...]:
    """Items of a subscription or of its previous_attributes (old shapes: only ``plan``)."""
    items = _list_data(obj.get("items"))
    if items:
        return tuple(parse_subscription_item(item) for item in items)
    if isinstance(obj.get("plan"), Mapping):
        return (parse_subscription_item({"plan": obj["plan"]}, fallback=obj),)
    return ()


def _metadata(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in _mapping(value).items() if v is not None}


def parse_subscription(obj: Obj, event_id: str) -> Subscription:
    """A subscription; top-level periods (old) or the items' periods (2025-03-31+)."""
    items = parse_subscription_items(obj)
    starts = [i.current_period_start for i in items if i.current_period_start is not None]
    ends = [i.current_period_end for i in items if i.current_period_end is not None]
    period_start = opt_int(obj.get("current_period_start"))
    period_end = opt_int(obj.get("current_period_end"))
    details = _mapping(obj.get("cancellation_details"))
    return Subscription(
        id=str(obj["id"]),
        customer_id=ref_id(obj.get("customer")),
        status=opt_str(obj.get("status")),
        items=items,
        created=opt_int(obj.get("created")),
        current_period_start=period_start
        if period_start is not None
        else min(starts, default=None),
        current_period_end=period_end if period_end is not None else min(ends, default=None),
        trial_start=opt_int(obj.get("trial_start")),
        trial_end=opt_int(obj.get("trial_end")),
        cancel_at_period_end=obj.get("cancel_at_period_end") is True,
        cancel_at=opt_int(obj.get("cancel_at")),
        canceled_at=opt_int(obj.get("canceled_at")),
        cancellation_reason=opt_str(details.get("reason")),
        cancellation_feedback=opt_str(details.get("feedback")),
        cancellation_comment=opt_str(details.get("comment")),
        metadata=_metadata(obj.get("metadata")),
        latest_invoice_id=ref_id(obj.get("latest_invoice")),
        default_payment_method=ref_id(obj.get("default_payment_method"))
        or ref_id(obj.get("default_source")),
        event_id=event_id,
        discounts=parse_discounts(obj),
        ended_at=opt_int(obj.get("ended_at")),
    )


def _invoice_subscription_id(obj: Obj) -> str | None:
    """``invoice.subscription`` (old), ``parent.subscription_details`` (current), or a line's."""
    found = ref_id(obj.get("subscription"))
    if found:
        return found
    parent = _mapping(obj.get("parent"))
    found = ref_id(_mapping(parent.get("subscription_details")).get("subscription"))
    if found:
        return found
    for line in _list_data(obj.get("lines")):
        line_parent = _mapping(line.get("parent"))
        found = ref_id(line.get("subscription")) or ref_id(
            _mapping(line_parent.get("subscription_item_details")).get("subscription")
        )
        if found:
            return found
    return None


def _invoice_payment(obj: Obj) -> tuple[str | None, str | None]:
    """(charge id, payment_intent id): top-level (old) or the ``payments`` list (current)."""
    charge_id = ref_id(obj.get("charge"))
    intent_id = ref_id(obj.get("payment_intent"))
    if charge_id or intent_id:
        return charge_id, intent_id
    payments = _list_data(obj.get("payments"))
    payments.sort(key=lambda p: p.get("status") != "paid")  # the paid one first, stable otherwise
    for entry in payments:
        payment = _mapping(entry.get("payment"))
        charge_id = ref_id(payment.get("charge"))
        intent_id = ref_id(payment.get("payment_intent"))
        if charge_id or intent_id:
            return charge_id, intent_id
    return None, None


# Payment intent states in which the customer has to act (3-D Secure) before it can succeed.
_ACTION_REQUIRED_INTENT_STATUSES = frozenset({"requires_action", "requires_confirmation"})


def _invoice_decline(obj: Obj) -> tuple[str | None, bool]:
    """(decline code, needs customer action) from an expanded ``payment_intent`` (old shapes
    expand it; current webhooks carry only ids, and then the charge tells the decline)."""
    intent = _mapping(obj.get("payment_intent"))
    error = _mapping(intent.get("last_payment_error"))
    code = opt_str(error.get("decline_code")) or opt_str(error.get("code"))
    return code, intent.get("status") in _ACTION_REQUIRED_INTENT_STATUSES


def _invoice_status(obj: Obj) -> str | None:
    """``status``, or before it (changelog 2018-11-08, "Replaces the forgiven field with a new
    uncollectible status for invoices") the booleans: ``paid``, ``forgiven`` (= uncollectible),
    else open. See rules.versions."""
    status = opt_str(obj.get("status"))
    if status is not None or "paid" not in obj:
        return status
    if obj.get("paid") is True:
        return "paid"
    return "uncollectible" if obj.get("forgiven") is True else "open"


def parse_invoice(
    obj: Obj, event_id: str, *, requires_action: bool = False, api_version: str | None = None
) -> Invoice:
    """An invoice of any API shape; payment links become None when Stripe omits them.

    ``requires_action`` is set by the caller for invoice.payment_action_required: the invoice
    object itself does not say that its payment waits for the customer. ``api_version`` is the
    event's: ``billing_reason`` means something else before 2018-10-31 (rules.versions).
    Old names: ``date`` for ``created`` (2019-03-14), ``billing`` for ``collection_method``
    (2019-10-17).
    """
    charge_id, intent_id = _invoice_payment(obj)
    decline_code, intent_needs_action = _invoice_decline(obj)
    finalization = _mapping(obj.get("last_finalization_error"))
    amount_due = opt_int(obj.get("amount_due")) or 0
    amount_paid = opt_int(obj.get("amount_paid")) or 0
    remaining = opt_int(obj.get("amount_remaining"))
    return Invoice(
        id=str(obj["id"]),
        customer_id=ref_id(obj.get("customer")),
        subscription_id=_invoice_subscription_id(obj),
        status=_invoice_status(obj),
        billing_reason=opt_str(obj.get("billing_reason")),
        attempt_count=opt_int(obj.get("attempt_count")) or 0,
        next_payment_attempt=opt_int(obj.get("next_payment_attempt")),
        amount_due=amount_due,
        amount_paid=amount_paid,
        amount_remaining=max(amount_due - amount_paid, 0) if remaining is None else remaining,
        currency=opt_str(obj.get("currency")),
        hosted_invoice_url=opt_str(obj.get("hosted_invoice_url")),
        charge_id=charge_id,
        payment_intent_id=intent_id,
        created=opt_int(obj.get("created")) or opt_int(obj.get("date")),
        customer_email=email_of(obj.get("customer_email")),
        customer_name=opt_str(obj.get("customer_name")),
        event_id=event_id,
        collection_method=opt_str(obj.get("collection_method")) or opt_str(obj.get("billing")),
        requires_action=requires_action or intent_needs_action,
        decline_code=decline_code,
        finalization_error=opt_str(finalization.get("code"))
        or opt_str(finalization.get("type"))
        or (opt_str(finalization.get("message")) and "finalization_error"),
        api_version=api_version,
    )


def _card_of_charge(obj: Obj) -> Obj:
    """Card details from ``payment_method_details.card``, or an old ``source`` card object."""
    details = _mapping(obj.get("payment_method_details"))
    card = _mapping(details.get("card"))
    if card:
        return card
    source = _mapping(obj.get("source"))
    return source if source.get("object") == "card" else {}


def parse_charge(obj: Obj, event_id: str) -> Charge:
    """A charge; only non-sensitive card fields are read (brand, last4, expiry, fingerprint)."""
    card = _card_of_charge(obj)
    return Charge(
        id=str(obj["id"]),
        customer_id=ref_id(obj.get("customer")),
        amount=opt_int(obj.get("amount")) or 0,
        currency=opt_str(obj.get("currency")),
        status=opt_str(obj.get("status")),
        paid=obj.get("paid") is True,
        refunded=obj.get("refunded") is True,
        amount_refunded=opt_int(obj.get("amount_refunded")) or 0,
        payment_intent_id=ref_id(obj.get("payment_intent")),
        invoice_id=ref_id(obj.get("invoice")),
        card_fingerprint=opt_str(card.get("fingerprint")),
        card_brand=opt_str(card.get("brand")),
        card_last4=opt_str(card.get("last4")),
        card_exp_month=opt_int(card.get("exp_month")),
        card_exp_year=opt_int(card.get("exp_year")),
        created=opt_int(obj.get("created")),
        event_id=event_id,
        failure_code=opt_str(obj.get("failure_code")),
        outcome_type=opt_str(_mapping(obj.get("outcome")).get("type")),
        outcome_reason=opt_str(_mapping(obj.get("outcome")).get("reason")),
        payment_method_id=ref_id(obj.get("payment_method"))
        or (ref_id(obj.get("source")) if card and card is obj.get("source") else None),
    )


def parse_failed_payment_intent(obj: Obj, event_id: str, created: int) -> Charge | None:
    """The failed charge a ``payment_intent.payment_failed`` names in ``last_payment_error``,
    with its decline code (``decline_code``, else ``code``); None when no charge was made
    (e.g. the payment waits for authentication)."""
    error = _mapping(obj.get("last_payment_error"))
    charge_id = ref_id(error.get("charge"))
    if charge_id is None:
        return None
    method = _mapping(error.get("payment_method"))
    card = _mapping(method.get("card"))
    return Charge(
        id=charge_id,
        customer_id=ref_id(obj.get("customer")),
        amount=opt_int(obj.get("amount")) or 0,
        currency=opt_str(obj.get("currency")),
        status="failed",
        paid=False,
        refunded=False,
        amount_refunded=0,
        payment_intent_id=opt_str(obj.get("id")),
        invoice_id=ref_id(obj.get("invoice")),
        card_fingerprint=opt_str(card.get("fingerprint")),
        card_brand=opt_str(card.get("brand")),
        card_last4=opt_str(card.get("last4")),
        card_exp_month=opt_int(card.get("exp_month")),
        card_exp_year=opt_int(card.get("exp_year")),
        created=created,
        event_id=event_id,
        failure_code=opt_str(error.get("code")),
        outcome_reason=opt_str(error.get("decline_code")),
        payment_method_id=ref_id(method.get("id")) or ref_id(error.get("payment_method")),
    )


def parse_dispute(obj: Obj, event_id: str) -> Dispute:
    """A dispute; the evidence deadline lives under ``evidence_details.due_by``."""
    return Dispute(
        id=str(obj["id"]),
        charge_id=ref_id(obj.get("charge")),
        amount=opt_int(obj.get("amount")) or 0,
        currency=opt_str(obj.get("currency")),
        reason=opt_str(obj.get("reason")),
        status=opt_str(obj.get("status")),
        created=opt_int(obj.get("created")),
        evidence_due_by=opt_int(_mapping(obj.get("evidence_details")).get("due_by")),
        event_id=event_id,
        is_charge_refundable=_opt_bool(obj.get("is_charge_refundable")),
        customer_id=ref_id(_mapping(obj.get("charge")).get("customer")),
    )


def parse_early_fraud_warning(obj: Obj, event_id: str) -> EarlyFraudWarning:
    """A ``radar.early_fraud_warning``: the charge it flags, and whether it is still actionable."""
    return EarlyFraudWarning(
        id=str(obj["id"]),
        charge_id=ref_id(obj.get("charge")),
        actionable=obj.get("actionable") is not False,
        fraud_type=opt_str(obj.get("fraud_type")),
        created=opt_int(obj.get("created")),
        event_id=event_id,
        customer_id=ref_id(_mapping(obj.get("charge")).get("customer")),
    )


def _opt_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


# Old checkout sessions have no ``status``: the event type says it.
_SESSION_STATUS_BY_EVENT = {
    "checkout.session.completed": "complete",
    "checkout.session.async_payment_succeeded": "complete",
    "checkout.session.async_payment_failed": "complete",
    "checkout.session.expired": "expired",
}
ASYNC_PAYMENT_FAILED = "checkout.session.async_payment_failed"


def parse_checkout_session(obj: Obj, event_id: str, event_type: str = "") -> CheckoutSession:
    """A Checkout Session; the email comes from ``customer_details`` or ``customer_email``."""
    details = _mapping(obj.get("customer_details"))
    return CheckoutSession(
        id=str(obj["id"]),
        customer_id=ref_id(obj.get("customer")),
        customer_email=email_of(details.get("email")) or email_of(obj.get("customer_email")),
        status=opt_str(obj.get("status")) or _SESSION_STATUS_BY_EVENT.get(event_type),
        mode=opt_str(obj.get("mode")),
        payment_status=opt_str(obj.get("payment_status")),
        subscription_id=ref_id(obj.get("subscription")),
        amount_total=opt_int(obj.get("amount_total")),
        currency=opt_str(obj.get("currency")),
        created=opt_int(obj.get("created")),
        expires_at=opt_int(obj.get("expires_at")),
        event_id=event_id,
        async_payment_failed=event_type == ASYNC_PAYMENT_FAILED,
    )


def parse_payment_method(obj: Obj, event_id: str, *, detached: bool = False) -> PaymentMethod:
    """A card payment method (``pm_``) or an old card source (``card_``): expiry only."""
    card = _mapping(obj.get("card")) if obj.get("object") == "payment_method" else obj
    customer_id = ref_id(obj.get("customer"))
    return PaymentMethod(
        id=str(obj["id"]),
        customer_id=customer_id,
        card_brand=opt_str(card.get("brand")),
        card_last4=opt_str(card.get("last4")),
        card_exp_month=opt_int(card.get("exp_month")),
        card_exp_year=opt_int(card.get("exp_year")),
        card_fingerprint=opt_str(card.get("fingerprint")),
        detached=detached or customer_id is None,
        created=opt_int(obj.get("created")),
        event_id=event_id,
    )


#: Longest product name kept; Stripe's dashboard allows long names, people need the start.
MAX_PRODUCT_NAME = 120


def parse_product(obj: Obj, event_id: str, *, deleted: bool = False) -> Product:
    """A product from ``product.*`` events or an expanded ``price.product`` / ``plan.product``;
    the name is stripped of control characters and cut to ``MAX_PRODUCT_NAME``."""
    name = opt_str(obj.get("name"))
    if name is not None:
        name = " ".join("".join(ch if ch.isprintable() else " " for ch in name).split())
        name = name[:MAX_PRODUCT_NAME] or None
    return Product(
        id=str(obj["id"]),
        name=name,
        active=obj.get("active") is not False,
        deleted=deleted or obj.get("deleted") is True,
        event_id=event_id,
    )


def expanded_products(obj: Obj) -> list[Obj]:
    """Product objects a subscription payload carries expanded under its items' price or plan."""
    found = []
    for item in _list_data(obj.get("items")):
        for key in ("price", "plan"):
            product = _mapping(item.get(key)).get("product")
            if isinstance(product, Mapping) and isinstance(product.get("id"), str):
                found.append(product)
    return found
