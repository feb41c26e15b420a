"""What every rule reads: the snapshot, the evaluation time and config, plus derived indexes.

A snapshot may hold several customer records of one person (same email); ``person_of`` groups
them so "the same customer, or the same email on another record" is one lookup.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rules.config import RulesConfig
from rules.model import Charge, Customer, Invoice, Subscription
from rules.snapshot import BillingSnapshot
from rules.versions import billing_reason_of


@dataclass(frozen=True, slots=True)
class RuleContext:
    """The inputs of one evaluation; ``as_of`` is the only notion of time a rule may use."""

    snapshot: BillingSnapshot
    as_of: int
    config: RulesConfig
    person_of: Mapping[str, str] = field(default_factory=dict)
    person_of_email: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, snapshot: BillingSnapshot, as_of: int, config: RulesConfig) -> RuleContext:
        """A context with the customer-to-person grouping computed once."""
        person_of, person_of_email = _group_people(snapshot)
        return cls(snapshot, as_of, config, person_of, person_of_email)

    def person(self, customer_id: str | None) -> str | None:
        """The person key of a customer record (its own id when no email links it)."""
        if customer_id is None:
            return None
        return self.person_of.get(customer_id, customer_id)

    def person_by_email(self, email: str | None) -> str | None:
        """The person key known for an email, if any customer record carries it."""
        return self.person_of_email.get(email) if email else None

    def customer(self, customer_id: str | None) -> Customer | None:
        """The customer record, if known."""
        return self.snapshot.customer(customer_id)

    def invoices_of(self, subscription_id: str) -> tuple[Invoice, ...]:
        """Invoices of one subscription, oldest first."""
        found = [i for i in self.snapshot.invoices if i.subscription_id == subscription_id]
        return tuple(sorted(found, key=lambda i: (i.created or 0, i.id)))

    def billing_reason(self, invoice: Invoice) -> str | None:
        """The invoice's billing reason in today's meaning, also from payloads that omit it or
        predate 2018-10-31 (``rules.versions.billing_reason_of``)."""
        sub = self.snapshot.subscription(invoice.subscription_id)
        return billing_reason_of(invoice, self.snapshot.invoices, sub)

    def charge_of_invoice(self, invoice: Invoice) -> Charge | None:
        """The charge that paid an invoice: by id, by invoice link, or by payment intent."""
        for charge in self.snapshot.charges:
            if charge.id == invoice.charge_id or (invoice.id and charge.invoice_id == invoice.id):
                return charge
            if invoice.payment_intent_id and charge.payment_intent_id == invoice.payment_intent_id:
                return charge
        return None

    def verify_contract(self, sub: Subscription | None) -> bool:
        """Annual, multi-seat or prorated subscriptions need their contract checked first."""
        if sub is None:
            return False
        if sub.is_annual or sub.max_quantity > 1:
            return True
        return any(
            self.billing_reason(i) == "subscription_update" for i in self.invoices_of(sub.id)
        )


def _group_people(snapshot: BillingSnapshot) -> tuple[dict[str, str], dict[str, str]]:
    """Union customer ids that share an email; a person's key is its smallest customer id."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    links: list[tuple[str, str | None]] = [(c.id, c.email) for c in snapshot.customers]
    links += [(i.customer_id, i.customer_email) for i in snapshot.invoices if i.customer_id]
    links += [
        (s.customer_id, s.customer_email) for s in snapshot.checkout_sessions if s.customer_id
    ]
    first_by_email: dict[str, str] = {}
    for customer_id, email in links:
        find(customer_id)
        if email:
            other = first_by_email.setdefault(email, customer_id)
            union(other, customer_id)
    for sub in snapshot.subscriptions:
        if sub.customer_id:
            find(sub.customer_id)
    person_of = {c: find(c) for c in parent}
    person_of_email = {email: find(c) for email, c in first_by_email.items()}
    return person_of, person_of_email
