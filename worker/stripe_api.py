"""The Stripe API adapter: one way to build a client, the subscription refresh, product names.

With ``STRIPE_API_KEY`` set, a worker asks Stripe for the person's subscriptions before it
evaluates the rules, so that a subscription whose webhook was lost or has not arrived yet still
counts. ``STRIPE_API_BASE`` points the client at a local emulator (localstripe in the tests).
Without a key, everything works from events alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import stripe
import structlog

from rules import ObjectRecord, parse_event, records_from_event

log = structlog.get_logger()

#: Seconds before a Stripe API call is abandoned.
DEFAULT_TIMEOUT_SECONDS = 15
#: A refresh looks at this many customer records of one person at most.
MAX_CUSTOMERS_PER_REFRESH = 10
#: Events after which subscriptions are worth a look (one API call per customer record).
REFRESH_EVENT_PREFIXES = ("customer.subscription.", "checkout.session.", "invoice.")
#: Event ids of refreshed snapshots start with this, so evidence says where it came from.
API_EVIDENCE_PREFIX = "api_"
#: The event type a fetched subscription is projected as.
SUBSCRIPTION_EVENT = "customer.subscription.updated"
#: A product name fetched from the API is used this long before it is fetched again (names
#: learned from product.* events stay current through those events instead).
PRODUCT_NAME_TTL_SECONDS = 7 * 86_400
#: One event fetches at most this many products (a subscription rarely has more items).
MAX_PRODUCTS_PER_EVENT = 10


def stripe_client(
    api_key: str, api_base: str | None, timeout: float = DEFAULT_TIMEOUT_SECONDS
) -> stripe.StripeClient:
    """A client that fails instead of retrying: callers decide what a failure means."""
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base} if api_base else None,
        max_network_retries=0,
        http_client=stripe.RequestsClient(timeout=timeout),
    )


@dataclass(frozen=True)
class SubscriptionRefresher:
    """Fetches the current subscriptions of customers, as projection records."""

    api_key: str = field(repr=False)
    api_base: str | None = None

    @classmethod
    def from_settings(
        cls, api_key: str | None, api_base: str | None
    ) -> SubscriptionRefresher | None:
        return cls(api_key=api_key, api_base=api_base) if api_key else None

    def wants(self, event_type: str) -> bool:
        """Refresh after subscription, checkout and invoice events only: Stripe rate-limits,
        and a charge or a dispute says nothing new about subscriptions."""
        return event_type.startswith(REFRESH_EVENT_PREFIXES)

    def records(self, customer_ids: Iterable[str], fetched_at: int) -> list[ObjectRecord]:
        """Every subscription of these customers, stamped with the fetch time (a snapshot
        newer than any event created before it). A failure is logged and yields nothing:
        the events alone still decide."""
        client = stripe_client(self.api_key, self.api_base)
        records: list[ObjectRecord] = []
        for customer_id in sorted(customer_ids)[:MAX_CUSTOMERS_PER_REFRESH]:
            try:
                page = client.v1.subscriptions.list(
                    params={"customer": customer_id, "status": "all", "limit": 100}
                )
            except (stripe.StripeError, OSError) as error:
                log.warning(
                    "stripe_refresh_failed", customer_id=customer_id, error=type(error).__name__
                )
                continue
            for subscription in page.data:
                records.extend(
                    fetched_records(SUBSCRIPTION_EVENT, subscription.to_dict(), fetched_at)
                )
        return records


@dataclass(frozen=True)
class ProductNames:
    """Retrieves products whose names billing-ops has not learned (GET /v1/products/:id,
    docs.stripe.com/api/products/retrieve). The store is the cache: a fetched product is kept
    as a projection record stamped with the fetch time and fetched again after
    ``ttl_seconds``."""

    api_key: str = field(repr=False)
    api_base: str | None = None
    ttl_seconds: int = PRODUCT_NAME_TTL_SECONDS

    @classmethod
    def from_settings(cls, api_key: str | None, api_base: str | None) -> ProductNames | None:
        return cls(api_key=api_key, api_base=api_base) if api_key else None

    def records(self, product_ids: Iterable[str], fetched_at: int) -> list[ObjectRecord]:
        """The products, as records; one that fails is logged and skipped (the id is shown)."""
        client = stripe_client(self.api_key, self.api_base)
        records: list[ObjectRecord] = []
        for product_id in sorted(product_ids)[:MAX_PRODUCTS_PER_EVENT]:
            try:
                product = client.v1.products.retrieve(product_id)
            except (stripe.StripeError, OSError) as error:
                log.warning(
                    "stripe_product_fetch_failed",
                    product_id=product_id,
                    error=type(error).__name__,
                )
                continue
            records.extend(fetched_records("product.updated", product.to_dict(), fetched_at))
        return records


def fetched_records(
    event_type: str, obj: dict[str, Any], fetched_at: int
) -> tuple[ObjectRecord, ...]:
    """An object fetched from the API, through the same parser as a webhook's: wrapped as an
    event of ``event_type`` created at the fetch time, so it outranks every event created
    before the fetch and yields to every event created after it (``rules.supersedes``)."""
    event = parse_event(
        {
            "id": f"{API_EVIDENCE_PREFIX}{obj['id']}_{fetched_at}",
            "object": "event",
            "type": event_type,
            "created": fetched_at,
            "livemode": bool(obj.get("livemode")),
            "api_version": None,
            "data": {"object": obj},
        }
    )
    return records_from_event(event)
