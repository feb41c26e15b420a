"""An existing Stripe account, built in localstripe through the API before billing-ops is
installed: a duplicate subscription, a past-due renewal and a healthy customer."""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass
from typing import Any

from tests.support import subscribe_twice

GOOD_CARD = "4242424242424242"
#: Stripe's test card that attaches to a customer but whose charges fail.
FAILING_CARD = "4000000000000341"


@dataclass(frozen=True)
class Account:
    duplicate_customer: str
    duplicate_subscriptions: tuple[str, str]
    past_due_customer: str
    past_due_subscription: str
    past_due_invoice: str
    healthy_customer: str
    healthy_charge: str


def flush(localstripe_url: str) -> None:
    """localstripe's own endpoint that empties its store (a fresh account per test)."""
    request = urllib.request.Request(f"{localstripe_url}/_config/data", method="DELETE")
    urllib.request.urlopen(request, timeout=5).close()


def _card(client: Any, customer_id: str, number: str) -> str:
    card = client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123"},
        }
    )
    client.v1.payment_methods.attach(card.id, params={"customer": customer_id})
    client.v1.customers.update(
        customer_id, params={"invoice_settings": {"default_payment_method": card.id}}
    )
    return str(card.id)


def _monthly_plan(client: Any, name: str, interval: str = "month", amount: int = 2900) -> str:
    product = client.v1.products.create(params={"name": name})
    plan = client.v1.plans.create(
        params={"amount": amount, "currency": "usd", "interval": interval, "product": product.id}
    )
    return str(plan.id)


def past_due_renewal(client: Any, email: str) -> tuple[str, str, str]:
    """A paying subscriber whose card starts failing: the next invoice (localstripe bills at
    once when the billing interval changes) fails and the subscription goes ``past_due``."""
    customer = client.v1.customers.create(params={"email": email, "name": "Pat Due"})
    _card(client, customer.id, GOOD_CARD)
    subscription = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"plan": _monthly_plan(client, "Team")}]}
    )
    _card(client, customer.id, FAILING_CARD)
    yearly = _monthly_plan(client, "Team yearly", interval="year", amount=29000)
    item = subscription["items"].data[0].id
    updated = client.v1.subscriptions.update(
        subscription.id, params={"items": [{"id": item, "plan": yearly}]}
    )
    assert updated.status == "past_due", updated.status
    return str(customer.id), str(subscription.id), str(updated.latest_invoice)


def build_account(client: Any) -> Account:
    first, second = subscribe_twice(client, "dup@example.com", "Dee Dupe")
    past_due_customer, past_due_sub, past_due_invoice = past_due_renewal(client, "due@example.com")
    healthy = client.v1.customers.create(params={"email": "ok@example.com", "name": "Hal Thy"})
    _card(client, healthy.id, GOOD_CARD)
    client.v1.subscriptions.create(
        params={"customer": healthy.id, "items": [{"plan": _monthly_plan(client, "Solo")}]}
    )
    charge = client.v1.charges.list(params={"customer": healthy.id}).data[0]
    return Account(
        duplicate_customer=str(first.customer),
        duplicate_subscriptions=(str(first.id), str(second.id)),
        past_due_customer=past_due_customer,
        past_due_subscription=past_due_sub,
        past_due_invoice=past_due_invoice,
        healthy_customer=str(healthy.id),
        healthy_charge=str(charge.id),
    )
