"""Plain, frozen billing objects: the projection's vocabulary.

Each object is the subset of a Stripe object the rules need, read from either API shape, and
carries ``event_id``: the event that last set it, so a finding can cite its evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class SubscriptionItem:
    """One priced line of a subscription; periods are per item since API 2025-03-31."""

    price_id: str | None
    product_id: str | None
    interval: str | None
    interval_count: int
    unit_amount: int | None
    currency: str | None
    quantity: int
    current_period_start: int | None
    current_period_end: int | None

    @property
    def monthly_amount_minor(self) -> int:
        """The item's price normalised to one month, quantity included (rounded down)."""
        if self.unit_amount is None or self.interval not in _MONTHLY_FACTOR:
            return 0
        num, den = _MONTHLY_FACTOR[self.interval]
        return (self.unit_amount * self.quantity * num) // (den * max(self.interval_count, 1))


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

    @property
    def is_live(self) -> bool:
        """True while the subscription still bills (active, trialing or past_due)."""
        return self.status in LIVE_SUBSCRIPTION_STATUSES

    @property
    def monthly_amount_minor(self) -> int:
        """Monthly recurring revenue of this subscription (yearly prices divided by 12)."""
        return sum(item.monthly_amount_minor for item in self.items)

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


BillingObject = (
    Customer | Subscription | Invoice | Charge | Dispute | CheckoutSession | PaymentMethod
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
}

__all__ = [
    "LIVE_SUBSCRIPTION_STATUSES",
    "MODEL_BY_OBJECT_TYPE",
    "BillingObject",
    "Charge",
    "CheckoutSession",
    "Customer",
    "Dispute",
    "Invoice",
    "PaymentMethod",
    "Subscription",
    "SubscriptionItem",
]
