"""Stripe API versions: which fields the rules read changed when, and how older payloads still
give the same meaning.

Stripe sends a webhook in the API version of its endpoint (or the account's default), so one
billing-ops sees 2017-era payloads beside today's. The table of every field the rules read,
the version (changelog entry) that introduced, renamed or re-meant it, and its fallback is in
the README, "Stripe API versions"; ``rules.parsing`` applies the per-field fallbacks (``date``,
``billing``, ``plan``, card ``source``, ``forgiven``/``paid``, ``invoice.subscription``,
``invoice.charge``). This module holds the version arithmetic and the one fallback that needs
more than one object, ``billing_reason_of`` (is this invoice its subscription's first?).

An event of a version billing-ops does not know (not in ``KNOWN_DATED_VERSIONS`` nor of a
``RELEASE_TRAINS`` release: older than 2017-01-27, malformed, or a release it has not heard
of) is read with the closest known shape (``closest_known_version``) and counted by the
worker, never dropped. Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rules.model import Invoice, Subscription

#: Every API version Stripe's changelog lists from 2017-01-27 on (docs.stripe.com/changelog,
#: "Previous versions"); the named releases (``RELEASE_TRAINS``) are matched by pattern.
KNOWN_DATED_VERSIONS: tuple[str, ...] = (
    "2017-01-27",
    "2017-02-14",
    "2017-04-06",
    "2017-05-25",
    "2017-06-05",
    "2017-08-15",
    "2017-12-14",
    "2018-01-23",
    "2018-02-05",
    "2018-02-06",
    "2018-02-28",
    "2018-05-21",
    "2018-07-27",
    "2018-08-23",
    "2018-09-06",
    "2018-09-24",
    "2018-10-31",
    "2018-11-08",
    "2019-02-11",
    "2019-02-19",
    "2019-03-14",
    "2019-05-16",
    "2019-08-14",
    "2019-09-09",
    "2019-10-08",
    "2019-10-17",
    "2019-11-05",
    "2019-12-03",
    "2020-03-02",
    "2020-08-27",
    "2022-08-01",
    "2022-11-15",
    "2023-08-16",
    "2023-10-16",
    "2024-04-10",
    "2024-06-20",
)
#: Named releases since 2024-09-30 and the version that opened each (its breaking changes;
#: later versions of a release are additive): docs.stripe.com/changelog/<name>. Dahlia's and
#: Endive's entries change no field the rules read.
RELEASE_TRAINS: dict[str, str] = {
    "acacia": "2024-09-30",
    "basil": "2025-03-31",
    "clover": "2025-09-30",
    "dahlia": "2026-03-25",
    "endive": "2026-09-30",
}
_TRAIN_VERSION = re.compile(r"^(\d{4}-\d{2}-\d{2})\.(" + "|".join(RELEASE_TRAINS) + r")$")
#: Every shape billing-ops knows, oldest first: the dated versions, then each release's first.
KNOWN_SHAPES: tuple[str, ...] = (
    *KNOWN_DATED_VERSIONS,
    *(f"{date}.{name}" for name, date in RELEASE_TRAINS.items()),
)
_DATE_PREFIX = re.compile(r"^(\d{4}-\d{2}-\d{2})")

#: The first version whose first subscription invoice says ``subscription_create``.
SUBSCRIPTION_CREATE_SINCE = "2018-10-31"
#: An invoice created this long after its subscription is not the subscription's first: Stripe
#: creates the first invoice with the subscription ("How subscriptions work",
#: docs.stripe.com/billing/subscriptions/overview), the next one a billing period later.
FIRST_INVOICE_WINDOW_SECONDS = 3600
#: Subscriptions whose only invoice is their first (API reference, Subscription object: status).
_FIRST_INVOICE_STATUSES = frozenset({"incomplete", "incomplete_expired"})
_CYCLE = "subscription_cycle"
_CREATE = "subscription_create"
_UPDATE = "subscription_update"


def is_known_version(api_version: str | None) -> bool:
    """True for a version in Stripe's changelog from 2017-01-27 on (or a named release)."""
    if api_version is None:
        return False
    return api_version in KNOWN_DATED_VERSIONS or _TRAIN_VERSION.match(api_version) is not None


def version_date(api_version: str | None) -> str | None:
    """The ``YYYY-MM-DD`` a version starts with, or None when it has none."""
    match = _DATE_PREFIX.match(api_version or "")
    return match.group(1) if match else None


def closest_known_version(api_version: str | None) -> str:
    """The known version whose shape an event of ``api_version`` is read with: itself when
    known; else the newest known shape not after its date (the shape in force then), the
    oldest known when it is older than all, and the newest known when it has no date."""
    if api_version is not None and is_known_version(api_version):
        return api_version
    date = version_date(api_version)
    if date is None:
        return KNOWN_SHAPES[-1]
    earlier = [v for v in KNOWN_SHAPES if v[:10] <= date]
    return earlier[-1] if earlier else KNOWN_SHAPES[0]


def before(api_version: str | None, version: str) -> bool:
    """True when ``api_version`` (read as its closest known) predates ``version``; an event
    without a version is read in today's shape."""
    if api_version is None:
        return False
    date = version_date(closest_known_version(api_version))
    return date is not None and date < version


def billing_reason_of(
    invoice: Invoice, invoices: Iterable[Invoice], subscription: Subscription | None
) -> str | None:
    """The invoice's billing reason in today's meaning.

    ``billing_reason`` as sent, unless it is missing or is a pre-2018-10-31
    ``subscription_update`` (which also named a subscription's first invoice, changelog
    2018-10-31). Then, for an invoice of a subscription: its first invoice is
    ``subscription_create``; a later one is ``subscription_cycle`` (or stays
    ``subscription_update`` when Stripe said so). "Later" means an earlier paid invoice of the
    same subscription exists, or the invoice was created ``FIRST_INVOICE_WINDOW_SECONDS`` or
    more after the subscription. None when nothing tells.
    """
    reason = invoice.billing_reason
    old_update = reason == _UPDATE and before(invoice.api_version, SUBSCRIPTION_CREATE_SINCE)
    if (reason is not None and not old_update) or invoice.subscription_id is None:
        return reason
    later = _UPDATE if old_update else _CYCLE
    if subscription is not None and subscription.status in _FIRST_INVOICE_STATUSES:
        return _CREATE
    if _has_earlier_paid_invoice(invoice, invoices):
        return later
    if subscription is None or subscription.created is None or invoice.created is None:
        return reason
    if invoice.created - subscription.created >= FIRST_INVOICE_WINDOW_SECONDS:
        return later
    return _CREATE


def _has_earlier_paid_invoice(invoice: Invoice, invoices: Iterable[Invoice]) -> bool:
    created = invoice.created or 0
    return any(
        other.id != invoice.id
        and other.subscription_id == invoice.subscription_id
        and other.status == "paid"
        and (other.created or 0) <= created
        for other in invoices
    )


__all__ = [
    "KNOWN_DATED_VERSIONS",
    "KNOWN_SHAPES",
    "RELEASE_TRAINS",
    "before",
    "billing_reason_of",
    "closest_known_version",
    "is_known_version",
    "version_date",
]
