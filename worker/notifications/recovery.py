"""What a recovery email is about, read from the customer's billing snapshot.

Used twice: when the case changes (to plan the email and describe it) and again at send time
(the projection may have moved on: the invoice paid, a newer attempt failed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rules.declines import failed_charge_of
from rules.formatting import format_money

if TYPE_CHECKING:
    from rules import BillingSnapshot, Finding
    from rules.model import Invoice

#: Finding kinds that send the customer a recovery email. A first payment that never
#: completed is not one of them: Stripe expires an incomplete subscription after 23 hours and
#: voids its invoice, so there is nothing left to pay (the case asks for a fresh checkout).
RECOVERY_KINDS = frozenset({"failed_renewal"})
#: Invoice states in which nothing is owed any more: a pending email is cancelled. An
#: ``uncollectible`` invoice is not one: it is written off but can still be paid
#: ("How invoicing works", https://docs.stripe.com/invoicing/overview).
SETTLED_INVOICE_STATUSES = frozenset({"paid", "void"})
#: The finding's action when the customer must pay on the invoice page itself (3-D Secure,
#: a hard decline, retries over, send_invoice): updating the card alone would not pay it.
INVOICE_LINK_ACTION = "send_invoice_link"


@dataclass(frozen=True)
class Recovery:
    """The facts a recovery email states: plan, amount, card (brand and last4 only), link."""

    kind: str
    customer_id: str
    invoice_id: str
    attempt_count: int
    amount: str
    plan: str | None
    card_brand: str | None
    card_last4: str | None
    hosted_invoice_url: str | None
    next_payment_attempt: int | None
    first_name: str | None
    pay_on_invoice_page: bool = False
    authenticate: bool = False


def recovery_invoice(finding: Finding, snapshot: BillingSnapshot) -> Invoice | None:
    """The invoice the customer should pay: a subject, or a subject subscription's latest."""
    subjects = finding.subjects
    for subject in subjects:
        invoice = snapshot.invoice(subject)
        if invoice is not None:
            return invoice
    for subject in subjects:
        sub = snapshot.subscription(subject)
        if sub is not None and sub.latest_invoice_id:
            return snapshot.invoice(sub.latest_invoice_id)
    return None


def is_settled(invoice: Invoice) -> bool:
    return invoice.status in SETTLED_INVOICE_STATUSES or invoice.amount_remaining <= 0


def recipient(snapshot: BillingSnapshot, customer_id: str, invoice: Invoice | None) -> str | None:
    """The customer's real address: the customer record's, else the invoice's copy."""
    customer = snapshot.customer(customer_id)
    if customer is not None and customer.email:
        return customer.email
    return invoice.customer_email if invoice is not None else None


def describe(finding: Finding, snapshot: BillingSnapshot) -> Recovery | None:
    """The recovery email's facts, or None when there is no unpaid invoice to point at."""
    invoice = recovery_invoice(finding, snapshot)
    if invoice is None or is_settled(invoice):
        return None
    customer_id = finding.customer_id
    customer = snapshot.customer(customer_id)
    name = (customer.name if customer else None) or invoice.customer_name
    charge = failed_charge_of(snapshot, invoice)
    on_invoice_page = finding.recommended_action.type == INVOICE_LINK_ACTION
    return Recovery(
        kind=finding.kind,
        customer_id=customer_id,
        invoice_id=invoice.id,
        attempt_count=invoice.attempt_count,
        amount=format_money(invoice.amount_remaining, invoice.currency),
        plan=_plan_name(snapshot, invoice.subscription_id, finding),
        card_brand=(charge.card_brand or None) if charge else None,
        card_last4=(charge.card_last4 or None) if charge else None,
        hosted_invoice_url=invoice.hosted_invoice_url,
        next_payment_attempt=None if on_invoice_page else invoice.next_payment_attempt,
        first_name=(name or "").split(" ")[0] or None,
        pay_on_invoice_page=on_invoice_page,
        authenticate=on_invoice_page and invoice.requires_action,
    )


def _plan_name(
    snapshot: BillingSnapshot, subscription_id: str | None, finding: Finding
) -> str | None:
    """The product's name as billing-ops learned it, else a readable one from a readable id
    (``prod_team_plus`` → ``Team Plus``); an opaque Stripe id (``prod_NWjs8kKbJWmuuc``) is not
    shown to a customer at all.
    """
    sub = snapshot.subscription(subscription_id)
    if sub is None:
        sub = next((s for s in map(snapshot.subscription, finding.subjects) if s), None)
    if sub is None:
        return None
    product = next((item.product_id for item in sub.items if item.product_id), None)
    if not product:
        return None
    learned = snapshot.product_name(product)  # from product.* events or the API
    if learned:
        return learned
    words = product.removeprefix("prod_").replace("_", " ").replace("-", " ").split()
    if not words or any(any(ch.isdigit() for ch in w) or len(w) > 12 for w in words):
        return None
    return " ".join(w if w.isupper() else w.capitalize() for w in words)
