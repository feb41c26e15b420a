"""Product names are learned from product.* events and from expanded price.product objects.

Stripe sends ``product.created/updated/deleted`` with the Product object (name, active;
docs.stripe.com/api/products/object); a subscription's ``items.data[].price.product`` (or the
old ``plan.product``) is an id unless the request expanded it (docs.stripe.com/expand).
"""

from __future__ import annotations

from rules import SUPPORTED_EVENT_TYPES, parse_event
from rules.snapshot import snapshot_of


def test_product_events_are_projected(event):
    """product.updated gives the product's current name; product.* are supported, not ignored."""
    snapshot = snapshot_of([event("product.updated__renamed")])
    assert snapshot.product_name("prod_NWjs8kKbJWmuuc") == "Pro Plus"
    assert {"product.created", "product.updated", "product.deleted"} <= SUPPORTED_EVENT_TYPES


def test_deleted_product_keeps_its_name(event):
    """A retired product still names the subscriptions that paid for it."""
    snapshot = snapshot_of([event("product.updated__renamed"), event("product.deleted__retired")])
    (product,) = snapshot.products
    assert product.deleted and product.name == "Pro Plus"


def test_expanded_price_product_teaches_the_name(event):
    """A subscription payload with price.product expanded records the product and its name."""
    snapshot = snapshot_of([event("customer.subscription.created__expanded_product")])
    (sub,) = snapshot.subscriptions
    assert sub.product_ids == frozenset({"prod_Qx7LmN2pTeam"})
    assert snapshot.product_name("prod_Qx7LmN2pTeam") == "Team Workspace"


def test_product_events_do_not_move_the_persons_clock(event, payload):
    """A product is shared: its events do not count as the person's newest event."""
    sub = event("customer.subscription.created__expanded_product")
    doc = payload("product.deleted__retired")
    doc["created"] = sub.created + 86_400
    snapshot = snapshot_of([sub, parse_event(doc)])
    assert snapshot.as_of == sub.created


def test_names_are_cleaned_of_control_characters(payload):
    """A name with newlines or control characters is one printable line, cut to 120."""
    doc = payload("product.updated__renamed")
    doc["data"]["object"]["name"] = "Pro\n\u0007Plus " + "x" * 300
    (product,) = snapshot_of([parse_event(doc)]).products
    assert product.name is not None and product.name.startswith("Pro Plus x")
    assert len(product.name) == 120
