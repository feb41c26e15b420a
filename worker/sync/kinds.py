"""The object kinds ``sync`` lists: which SDK list call, with which filters, projected as
which event type. One row per kind; adding a kind is one more row."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import stripe

Params = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    """One object kind: how to list it and how its objects enter the projection."""

    name: str
    event_type: str  # the webhook type whose parser projects a fetched object of this kind
    lister: Callable[[stripe.StripeClient], Any]  # the SDK service whose ``list`` pages it
    filters: Callable[[int], Params]  # list parameters, given the window start
    keep: Callable[[Mapping[str, Any], int], bool] = lambda obj, since: True
    per_customer: bool = False  # listed once per live subscriber (Stripe needs a customer)


def _open_or_recent(invoice: Mapping[str, Any], since: int) -> bool:
    """Open invoices of any age (a failed renewal from last quarter is still owed) and every
    invoice created in the window. Filtered here rather than with Stripe's ``status`` and
    ``created`` list filters, which the emulator the tests use (localstripe) does not accept."""
    return invoice.get("status") == "open" or int(invoice.get("created") or 0) >= since


def _created_after(since: int) -> Params:
    # Stripe: list filters created[gt|gte|lt|lte] on charges and disputes
    # (https://docs.stripe.com/api/charges/list, https://docs.stripe.com/api/disputes/list).
    return {"created": {"gt": since - 1}}


KINDS: tuple[Kind, ...] = (
    Kind("customers", "customer.updated", lambda c: c.v1.customers, lambda since: {}),
    Kind("products", "product.updated", lambda c: c.v1.products, lambda since: {}),
    Kind("prices", "price.updated", lambda c: c.v1.prices, lambda since: {}),
    # status=all: without it Stripe leaves canceled subscriptions out of the list
    # (https://docs.stripe.com/api/subscriptions/list).
    Kind(
        "subscriptions",
        "customer.subscription.updated",
        lambda c: c.v1.subscriptions,
        lambda since: {"status": "all"},
    ),
    Kind("invoices", "invoice.updated", lambda c: c.v1.invoices, lambda since: {}, _open_or_recent),
    Kind("charges", "charge.updated", lambda c: c.v1.charges, _created_after),
    Kind("disputes", "charge.dispute.updated", lambda c: c.v1.disputes, _created_after),
    # Payment methods are listed per customer (https://docs.stripe.com/api/payment_methods/list:
    # ``customer`` and ``type``); only subscribers' cards matter to the rules (card expiry
    # before a renewal), so only customers with a live subscription are asked.
    Kind(
        "payment_methods",
        "payment_method.updated",
        lambda c: c.v1.payment_methods,
        lambda since: {"type": "card"},
        per_customer=True,
    ),
)

KIND_NAMES: tuple[str, ...] = tuple(k.name for k in KINDS)
BY_NAME: Mapping[str, Kind] = {k.name: k for k in KINDS}
