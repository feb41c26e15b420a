"""Plain, frozen billing objects: the projection's vocabulary.

Each object is the subset of a Stripe object the rules need, read from either API shape, and
carries ``event_id``: the event that last set it, so a finding can cite its evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

LIVE_SUBSCRIPTION_STATUSES = frozenset({"active", "trialing", "past_due"})

# Monthly amount = total * num // (den * interval_count): integer maths keeps money exact.
_MONTHLY_FACTOR = {"day": (365, 12), "week": (52, 12), "month": (1, 1), "year": (1, 12)}


@dataclass(frozen=True, slots=True)
class Customer:
    """A Stripe customer, or a partial hint of one built from another object's email."""

    id: str
    name: str | None
    email: str | None
    has_default_payment_method: bool | None
    deleted: bool
    created: int | None
    event_id: str
    # The instrument renewals fall back to after subscription.default_payment_method:
    # invoice_settings.default_payment_method, then the old default_source.
    default_payment_method_id: str | None = None
    default_source_id: str | None = None


@dataclass(frozen=True, slots=True)
class SubscriptionItem:
    """One priced line of a subscription; periods are per item since API 2025-03-31.

    ``usage_type`` (``recurring.usage_type``, or the old Plan's ``usage_type``), ``billing_scheme``
    and ``transform_quantity`` come from the Price object (docs.stripe.com/api/prices/object):
    a metered price bills usage billing-ops never sees, a tiered price has no ``unit_amount``.
    """

    price_id: str | None
    product_id: str | None
    interval: str | None
    interval_count: int
    unit_amount: int | None
    currency: str | None
    quantity: int
    current_period_start: int | None
    current_period_end: int | None
    usage_type: str | None = None
    billing_scheme: str | None = None
    transform_divide_by: int | None = None
    transform_round: str | None = None

    @property
    def period_amount_minor(self) -> int | None:
        """What one billing period of this item costs before discounts; None when it depends
        on usage (metered), on tiers, or on a price billing-ops was not shown."""
        if self.usage_type == "metered" or self.billing_scheme == "tiered":
            return None
        if self.unit_amount is None:
            return None
        units = self.quantity
        if self.transform_divide_by:  # package pricing: bill per started (or full) package
            whole, rest = divmod(units, self.transform_divide_by)
            units = whole + (1 if rest and self.transform_round != "down" else 0)
        return self.unit_amount * units

    @property
    def monthly_amount_minor(self) -> int | None:
        """The item's price normalised to one month, quantity included (rounded down);
        None when it cannot be known (see ``period_amount_minor``)."""
        amount = self.period_amount_minor
        if amount is None or self.interval not in _MONTHLY_FACTOR:
            return None
        return to_monthly(amount, self.interval, self.interval_count)


@dataclass(frozen=True, slots=True)
class Discount:
    """A discount on a subscription, reduced to its coupon's terms.

    ``known`` is False when the payload names the discount without its coupon's terms (an id in
    ``discounts``, or ``source.coupon`` unexpanded as webhooks carry it since 2025-09-30.clover),
    so its effect on revenue is unknown.
    """

    id: str | None
    known: bool
    percent_off: str | None = None  # decimal text, e.g. "25.5"
    amount_off: int | None = None
    currency: str | None = None
    duration: str | None = None
    applies_to_products: tuple[str, ...] | None = None


def monthly_total(items: tuple[SubscriptionItem, ...]) -> int | None:
    """The items' monthly list price (no discounts); None when any item's is unknown."""
    amounts = [item.monthly_amount_minor for item in items]
    if any(amount is None for amount in amounts):
        return None
    return sum(amount or 0 for amount in amounts)


def to_monthly(amount_minor: int, interval: str | None, interval_count: int) -> int | None:
    """An amount billed every ``interval_count`` ``interval``s, as a monthly amount."""
    if interval not in _MONTHLY_FACTOR:
        return None
    num, den = _MONTHLY_FACTOR[interval]
    return (amount_minor * num) // (den * max(interval_count, 1))


@dataclass(frozen=True, slots=True)
class Subscription:
    """A subscription with its items, trial, cancellation and payment-method state."""

    id: str
    customer_id: str | None
    status: str | None
    items: tuple[SubscriptionItem, ...]
    created: int | None
    current_period_start: int | None
    current_period_end: int | None
    trial_start: int | None
    trial_end: int | None
    cancel_at_period_end: bool
    cancel_at: int | None
    canceled_at: int | None
    cancellation_reason: str | None
    cancellation_feedback: str | None
    cancellation_comment: str | None
    metadata: Mapping[str, str]
    latest_invoice_id: str | None
    default_payment_method: str | None
    event_id: str
    discounts: tuple[Discount, ...] = ()
    #: When it ended (``ended_at``): the moment a canceled subscription became ``canceled``.
    ended_at: int | None = None
    #: Invoices that earlier snapshots of it named as ``latest_invoice`` (kept by
    #: ``rules.records.combine`` whatever order the snapshots arrived in).
    earlier_latest_invoices: tuple[str, ...] = ()

    @property
    def is_live(self) -> bool:
        """True while the subscription still bills (active, trialing or past_due)."""
        return self.status in LIVE_SUBSCRIPTION_STATUSES

    @property
    def invoice_ids_named(self) -> frozenset[str]:
        """Every invoice this subscription's snapshots named as their latest."""
        latest = (self.latest_invoice_id,) if self.latest_invoice_id else ()
        return frozenset((*self.earlier_latest_invoices, *latest))

    @property
    def monthly_amount_minor(self) -> int | None:
        """Monthly recurring revenue now: 0 while ``trialing`` (a trial bills nothing), else
        ``monthly_amount_after_trial_minor``; None when it cannot be known."""
        if self.status == "trialing":
            return 0
        return self.monthly_amount_after_trial_minor

    @property
    def monthly_amount_after_trial_minor(self) -> int | None:
        """What the subscription bills a month once any trial is over: list prices normalised
        to a month (yearly divided by 12) less its discounts. None when it depends on usage or
        tiers, or a discount's terms are not in the payload: unknown, rather than wrong."""
        period = self.period_amount_minor
        interval = next((i.interval for i in self.items if i.interval), None)
        count = next((i.interval_count for i in self.items if i.interval), 1)
        return None if period is None else to_monthly(period, interval, count)

    @property
    def period_amount_minor(self) -> int | None:
        """One billing period of all items, after discounts (Stripe requires one interval for
        every item of a subscription, so one period covers them all); None when unknown."""
        amounts = [(item.product_id, item.period_amount_minor) for item in self.items]
        if not amounts:
            return None
        total = 0
        for _, amount in amounts:
            if amount is None:
                return None
            total += amount
        for discount in self.discounts:
            covered = sum(
                amount or 0
                for product, amount in amounts
                if discount.applies_to_products is None or product in discount.applies_to_products
            )
            off = _discount_off(discount, min(covered, total), self.currency)
            if off is None:
                return None
            total -= off
        return total

    @property
    def unknown_revenue_reason(self) -> str | None:
        """Why this subscription's monthly revenue cannot be known, in words; None if it can."""
        if any(item.usage_type == "metered" for item in self.items):
            return "metered usage"
        if any(item.billing_scheme == "tiered" for item in self.items):
            return "tiered price"
        if any(not discount.known for discount in self.discounts):
            return "a discount whose terms the event does not carry"
        if self.monthly_amount_after_trial_minor is None:
            return "price not in the event"
        return None

    @property
    def product_ids(self) -> frozenset[str]:
        """The products this subscription pays for."""
        return frozenset(item.product_id for item in self.items if item.product_id)

    @property
    def total_quantity(self) -> int:
        """Seats across items; a team purchase shows up here as more than one."""
        return sum(item.quantity for item in self.items)

    @property
    def max_quantity(self) -> int:
        """The largest single-item quantity (1 for an ordinary single-seat plan)."""
        return max((item.quantity for item in self.items), default=1)

    @property
    def currency(self) -> str | None:
        """The currency of the first priced item."""
        return next((item.currency for item in self.items if item.currency), None)

    @property
    def is_annual(self) -> bool:
        """True when any item bills yearly: refunds and cancels need the contract checked."""
        return any(item.interval == "year" for item in self.items)


def _discount_off(discount: Discount, base: int, currency: str | None) -> int | None:
    """Minor units one discount takes off ``base`` (never more than it): a percentage, or a
    fixed amount in the subscription's currency. None when its terms are not known."""
    if not discount.known:
        return None
    if discount.percent_off is not None:
        return min(base, int(Decimal(base) * Decimal(discount.percent_off) / 100))
    if discount.amount_off is not None:
        if discount.currency not in (None, currency):
            return None
        return min(base, discount.amount_off)
    return 0


@dataclass(frozen=True, slots=True)
class Invoice:
    """An invoice; subscription and payment links read from old and current API shapes."""

    id: str
    customer_id: str | None
    subscription_id: str | None
    status: str | None
    billing_reason: str | None
    attempt_count: int
    next_payment_attempt: int | None
    amount_due: int
    amount_paid: int
    amount_remaining: int
    currency: str | None
    hosted_invoice_url: str | None
    charge_id: str | None
    payment_intent_id: str | None
    created: int | None
    customer_email: str | None
    customer_name: str | None
    event_id: str
    # charge_automatically (Stripe retries) or send_invoice (the customer pays it themselves).
    collection_method: str | None = None
    # Set by invoice.payment_action_required, or an expanded payment intent in requires_action:
    # the customer must authenticate (3-D Secure) on the hosted invoice page.
    requires_action: bool = False
    # The decline code of the last attempt, when the invoice carries an expanded payment
    # intent (``last_payment_error.decline_code``, else its ``code``).
    decline_code: str | None = None
    # ``last_finalization_error.code`` (e.g. customer_tax_location_invalid), if finalizing failed.
    finalization_error: str | None = None
    # The API version of the event that carried it: ``billing_reason`` means something else
    # before 2018-10-31 (rules.versions).
    api_version: str | None = None


@dataclass(frozen=True, slots=True)
class Charge:
    """A charge; card data is limited to brand, last4, expiry and fingerprint (never a number)."""

    id: str
    customer_id: str | None
    amount: int
    currency: str | None
    status: str | None
    paid: bool
    refunded: bool
    amount_refunded: int
    payment_intent_id: str | None
    invoice_id: str | None
    card_fingerprint: str | None
    card_brand: str | None
    card_last4: str | None
    card_exp_month: int | None
    card_exp_year: int | None
    created: int | None
    event_id: str
    # Why a charge failed: ``failure_code`` (card_declined, expired_card…), ``outcome.type``
    # (issuer_declined, blocked…) and ``outcome.reason`` (the decline code, e.g. stolen_card).
    failure_code: str | None = None
    outcome_type: str | None = None
    outcome_reason: str | None = None
    payment_method_id: str | None = None


@dataclass(frozen=True, slots=True)
class Dispute:
    """A dispute (chargeback or inquiry) on one charge."""

    id: str
    charge_id: str | None
    amount: int
    currency: str | None
    reason: str | None
    status: str | None
    created: int | None
    evidence_due_by: int | None
    event_id: str
    # Added later: defaults keep records stored before them readable.
    is_charge_refundable: bool | None = None
    customer_id: str | None = None  # from an expanded ``charge``, when the event carries one

    @property
    def is_inquiry(self) -> bool:
        """An inquiry or retrieval (``warning_*``): no funds withdrawn, the charge refundable.

        Stripe, "Disputes and fraud" (docs.stripe.com/disputes, inquiries and retrievals):
        unlike a formal dispute, no funds have been withdrawn and the payment can still be
        refunded, which resolves the inquiry without a dispute fee.
        """
        return (self.status or "").startswith("warning_")

    @property
    def blocks_refund(self) -> bool:
        """A refund of the charge is impossible or pays twice: a chargeback, open or decided.

        The Dispute object's ``is_charge_refundable`` says so when the event carries it; an
        inquiry still open is refundable, a closed inquiry (``warning_closed``) left the money
        where it was, and a ``prevented`` dispute was settled for the cardholder before it
        became a chargeback (Stripe's dispute prevention resolves it with a refund).
        """
        if self.is_charge_refundable is not None and self.status in OPEN_DISPUTE_STATUSES:
            return not self.is_charge_refundable
        return self.status in REFUND_BLOCKING_STATUSES


#: Every ``Dispute.status`` in Stripe's Dispute object reference (API 2025-08-27 added
#: ``prevented``, changelog "Adds support for Dispute Preventions").
INQUIRY_STATUSES = frozenset({"warning_needs_response", "warning_under_review", "warning_closed"})
CHARGEBACK_STATUSES = frozenset({"needs_response", "under_review", "won", "lost"})
REFUND_BLOCKING_STATUSES = CHARGEBACK_STATUSES | {"prevented", "charge_refunded"}
OPEN_DISPUTE_STATUSES = frozenset(
    {"warning_needs_response", "warning_under_review", "needs_response", "under_review"}
)
CLOSED_DISPUTE_STATUSES = frozenset(
    {"warning_closed", "won", "lost", "prevented", "charge_refunded"}  # charge_refunded: old APIs
)


@dataclass(frozen=True, slots=True)
class EarlyFraudWarning:
    """A card issuer's early fraud warning (``radar.early_fraud_warning``) on one charge.

    Stripe's Early Fraud Warning object: ``actionable`` is true while the charge has no
    dispute and is not fully refunded; refunding proactively avoids a later dispute.
    """

    id: str
    charge_id: str | None
    actionable: bool
    fraud_type: str | None
    created: int | None
    event_id: str
    customer_id: str | None = None  # from an expanded ``charge``, when the event carries one


@dataclass(frozen=True, slots=True)
class CheckoutSession:
    """A Checkout Session; the email may be the only link to a person when customer is None."""

    id: str
    customer_id: str | None
    customer_email: str | None
    status: str | None
    mode: str | None
    payment_status: str | None
    subscription_id: str | None
    amount_total: int | None
    currency: str | None
    created: int | None
    expires_at: int | None
    event_id: str
    # checkout.session.async_payment_failed: the delayed (bank debit) payment failed for good.
    async_payment_failed: bool = False


@dataclass(frozen=True, slots=True)
class PaymentMethod:
    """A saved card (payment_method.* or an old ``card_`` source), for the card-expiring signal."""

    id: str
    customer_id: str | None
    card_brand: str | None
    card_last4: str | None
    card_exp_month: int | None
    card_exp_year: int | None
    card_fingerprint: str | None
    detached: bool
    created: int | None
    event_id: str


@dataclass(frozen=True, slots=True)
class Product:
    """A product's name, for people: "Pro" rather than "prod_Pro" (docs.stripe.com/api/products).

    Learned from ``product.*`` events, from an expanded ``price.product`` / ``plan.product``,
    or (with ``STRIPE_API_KEY``) fetched from the API.
    """

    id: str
    name: str | None
    active: bool
    deleted: bool
    event_id: str


BillingObject = (
    Customer
    | Subscription
    | Invoice
    | Charge
    | Dispute
    | CheckoutSession
    | PaymentMethod
    | EarlyFraudWarning
    | Product
)

# object_type (as stored on ObjectRecord) -> model class.
MODEL_BY_OBJECT_TYPE: Mapping[str, type] = {
    "customer": Customer,
    "subscription": Subscription,
    "invoice": Invoice,
    "charge": Charge,
    "dispute": Dispute,
    "checkout_session": CheckoutSession,
    "payment_method": PaymentMethod,
    "early_fraud_warning": EarlyFraudWarning,
    "product": Product,
}

__all__ = [
    "CHARGEBACK_STATUSES",
    "CLOSED_DISPUTE_STATUSES",
    "INQUIRY_STATUSES",
    "LIVE_SUBSCRIPTION_STATUSES",
    "MODEL_BY_OBJECT_TYPE",
    "OPEN_DISPUTE_STATUSES",
    "BillingObject",
    "Charge",
    "CheckoutSession",
    "Customer",
    "Discount",
    "Dispute",
    "EarlyFraudWarning",
    "Invoice",
    "PaymentMethod",
    "Product",
    "Subscription",
    "SubscriptionItem",
]
