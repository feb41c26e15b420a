"""A person's billing state: the winning record of every object, grouped by type.

The worker builds one from the records it stores; tests and ``replay --dry-run`` build one with
``fold``. Either way the snapshot is plain data, and its ``as_of`` is the newest event in it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rules.events import BillingEvent
from rules.model import (
    Charge,
    CheckoutSession,
    Customer,
    Dispute,
    EarlyFraudWarning,
    Invoice,
    PaymentMethod,
    Product,
    Subscription,
)
from rules.records import ObjectRecord, combine, records_from_event


@dataclass(frozen=True, slots=True)
class BillingSnapshot:
    """Every known object of one person (possibly several customer records sharing an email)."""

    customers: tuple[Customer, ...] = ()
    subscriptions: tuple[Subscription, ...] = ()
    invoices: tuple[Invoice, ...] = ()
    charges: tuple[Charge, ...] = ()
    disputes: tuple[Dispute, ...] = ()
    checkout_sessions: tuple[CheckoutSession, ...] = ()
    payment_methods: tuple[PaymentMethod, ...] = ()
    newest_event_created: int = 0
    early_fraud_warnings: tuple[EarlyFraudWarning, ...] = ()
    products: tuple[Product, ...] = ()
    #: Subscriptions whose cancellation (now or at period end) billing-ops itself asked Stripe
    #: for, as its action audit knows them: the worker's fact, not Stripe's, so that the churn
    #: rule can tell an operator's cancel from the customer's (Stripe's event looks the same).
    canceled_by_billing_ops: frozenset[str] = frozenset()

    @property
    def as_of(self) -> int:
        """The time of the newest event that set any object here (0 when empty)."""
        return self.newest_event_created

    def customer(self, customer_id: str | None) -> Customer | None:
        """The customer with this id, if known."""
        return next((c for c in self.customers if c.id == customer_id), None)

    def subscription(self, subscription_id: str | None) -> Subscription | None:
        """The subscription with this id, if known."""
        return next((s for s in self.subscriptions if s.id == subscription_id), None)

    def invoice(self, invoice_id: str | None) -> Invoice | None:
        """The invoice with this id, if known."""
        return next((i for i in self.invoices if i.id == invoice_id), None)

    def charge(self, charge_id: str | None) -> Charge | None:
        """The charge with this id, if known."""
        return next((c for c in self.charges if c.id == charge_id), None)

    def disputes_of(self, charge_id: str | None) -> tuple[Dispute, ...]:
        """Every dispute (inquiry or chargeback, any status) on one charge."""
        return tuple(d for d in self.disputes if charge_id and d.charge_id == charge_id)

    def product_name(self, product_id: str | None) -> str | None:
        """The product's name for people, if billing-ops has learned it."""
        return next((p.name for p in self.products if p.id == product_id and p.name), None)


def _winners(records: Iterable[ObjectRecord]) -> dict[tuple[str, str], ObjectRecord]:
    best: dict[tuple[str, str], ObjectRecord] = {}
    for record in records:
        best[record.key] = combine(record, best.get(record.key))
    return best


def build_snapshot(records: Iterable[ObjectRecord]) -> BillingSnapshot:
    """A snapshot from the winning record per object (the caller may pass losers too)."""
    winners = sorted(_winners(records).values(), key=lambda r: r.key)
    by_type: dict[str, list[object]] = {}
    newest = 0
    for record in winners:
        by_type.setdefault(record.object_type, []).append(record.data)
        created = record.version[1] if len(record.version) > 1 else 0
        if isinstance(created, int) and record.object_type != "product":
            newest = max(newest, created)  # products are shared: their events are not the person's

    def group(object_type: str) -> tuple:  # type: ignore[type-arg]
        return tuple(by_type.get(object_type, ()))

    return BillingSnapshot(
        customers=group("customer"),
        subscriptions=group("subscription"),
        invoices=group("invoice"),
        charges=group("charge"),
        disputes=group("dispute"),
        checkout_sessions=group("checkout_session"),
        payment_methods=group("payment_method"),
        newest_event_created=newest,
        early_fraud_warnings=group("early_fraud_warning"),
        products=group("product"),
    )


def fold(events: Iterable[BillingEvent]) -> dict[tuple[str, str], ObjectRecord]:
    """The in-memory projection: apply every event's records, keeping each object's newest."""
    state: dict[tuple[str, str], ObjectRecord] = {}
    for event in events:
        for record in records_from_event(event):
            state[record.key] = combine(record, state.get(record.key))
    return state


def snapshot_of(events: Iterable[BillingEvent]) -> BillingSnapshot:
    """Shorthand for ``build_snapshot(fold(events).values())``."""
    return build_snapshot(fold(events).values())


__all__ = ["BillingSnapshot", "build_snapshot", "fold", "snapshot_of"]
