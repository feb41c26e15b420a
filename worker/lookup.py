"""The identity summary an operator asks for: who is this, what do they pay for, what is wrong.

One function, ``lookup``, makes it for the API, ``billing-ops lookup --json`` and the CLI's
text alike. Amounts are integers in the currency's minor unit beside the currency code, as in
cases; times are ISO 8601 UTC. It lists the person's open (and acknowledged) cases and their
recent invoices and charges.

A query is an email, or a ``cus_``, ``sub_``, ``in_``, ``ch_``, ``pi_`` (through its charge) or
``dp_`` / ``du_`` (a dispute) id. The answer covers the
whole person: every customer record sharing the email. ``found`` is true only when the store
knows something about the query (a ``cus_`` id is not taken on trust).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select

from rules.case_decisions import CaseStatus
from rules.versions import billing_reason_of
from worker.case_view import iso
from worker.event_validation import storable_text
from worker.pii import mask_email
from worker.projection import find_person, load_snapshot
from worker.store.db import read_session
from worker.store.tables import CaseRow, ObjectRow

ID_PREFIXES = {"cus_": "customer", "sub_": "subscription", "in_": "invoice", "ch_": "charge"}
#: Disputes are stored under their own id (``du_`` is an inquiry's older prefix).
DISPUTE_PREFIXES = ("dp_", "du_")
#: Invoices and charges listed, the most recent ones.
RECENT = 10
#: The longest query worth asking: an email column holds 320 characters, ids 255.
MAX_QUERY_LENGTH = 320


def object_type_of(object_id: str) -> str:
    """The object type a Stripe id names by its prefix ("" when none billing-ops stores)."""
    return next((t for p, t in ID_PREFIXES.items() if object_id.startswith(p)), "")


class LookupQueryError(ValueError):
    """Raised when a query is neither an email nor a supported Stripe id."""


def _seed(session: Any, query: str) -> tuple[list[str], list[str]]:
    """The customer ids and emails the query names, as far as the store knows them."""
    query = query.strip()
    if not storable_text(query, MAX_QUERY_LENGTH):
        raise LookupQueryError(
            f"cannot look up that: at most {MAX_QUERY_LENGTH} characters, no NUL, valid UTF-8"
        )
    if "@" in query:
        return [], [query.lower()]
    for prefix, object_type in ID_PREFIXES.items():
        if query.startswith(prefix):
            if object_type == "customer":
                known = session.scalar(
                    select(ObjectRow.object_id)
                    .where(ObjectRow.customer_id == query)
                    .union(
                        select(ObjectRow.object_id).where(
                            ObjectRow.object_type == "customer", ObjectRow.object_id == query
                        )
                    )
                    .limit(1)
                )
                return ([query] if known else []), []
            customer = session.scalar(
                select(ObjectRow.customer_id).where(
                    ObjectRow.object_type == object_type, ObjectRow.object_id == query
                )
            )
            return ([customer] if customer else []), []
    if query.startswith(DISPUTE_PREFIXES):
        customer = session.scalar(
            select(ObjectRow.customer_id).where(
                ObjectRow.object_type == "dispute", ObjectRow.object_id == query
            )
        )
        return ([customer] if customer else []), []
    if query.startswith("pi_"):
        # A payment intent is known through the charge it made (the charge record keeps it).
        customer = session.scalar(
            select(ObjectRow.customer_id)
            .where(
                ObjectRow.object_type == "charge",
                ObjectRow.data.contains(
                    # as ``worker.projection`` writes it: compact JSON
                    json.dumps({"payment_intent_id": query}, separators=(",", ":"))[1:-1],
                    autoescape=True,
                ),
            )
            .limit(1)
        )
        return ([customer] if customer else []), []
    raise LookupQueryError(
        f"cannot look up {query!r}: give an email or a cus_, sub_, in_, ch_, pi_ or dp_ id"
    )


def lookup(engine: Engine, query: str, *, reveal_email: bool | None = None) -> dict[str, Any]:
    """The identity summary; emails are shown in full only when the query was that email."""
    reveal = ("@" in query) if reveal_email is None else reveal_email
    show = (lambda e: e) if reveal else mask_email
    with read_session(engine) as session:
        ids, emails = _seed(session, query)
        person = find_person(session, ids, emails)
        snapshot = load_snapshot(session, person)
        cases = [
            {
                "id": row.id,
                "key": row.key,
                "status": row.status,
                "kind": row.kind,
                "classification": row.classification,
                "severity": row.severity,
                "currency": row.currency or None,
                "at_stake_minor": row.at_stake_minor,
                "opened_at": iso(row.opened_at),
            }
            for row in session.scalars(
                select(CaseRow)
                .where(
                    CaseRow.customer_id.in_(person.customer_ids or [""]),
                    CaseRow.status != CaseStatus.RESOLVED.value,
                )
                .order_by(CaseRow.updated_at.desc(), CaseRow.id.desc())
            )
        ]
    live = [s for s in snapshot.subscriptions if s.status in ("active", "trialing", "past_due")]
    products: dict[str, list[str]] = {}
    for sub in live:
        for item in sub.items:
            products.setdefault(item.product_id or item.price_id or "?", []).append(sub.id)
    anomalies = [
        f"{len(subs)} live subscriptions to {product}: {', '.join(sorted(subs))}"
        for product, subs in sorted(products.items())
        if len(set(subs)) > 1
    ]
    disputed = {d.charge_id for d in snapshot.disputes if d.charge_id}
    return {
        "query": query if reveal else (show(query) if "@" in query else query),
        "found": bool(person.customer_ids or snapshot.subscriptions or snapshot.invoices or cases),
        "customers": [
            {"id": c.id, "name": c.name, "email": show(c.email), "deleted": c.deleted}
            for c in sorted(snapshot.customers, key=lambda c: c.id)
        ],
        "subscriptions": {
            "active": [_sub(s) for s in live],
            "canceled": [_sub(s) for s in snapshot.subscriptions if s not in live],
        },
        "invoices": [
            {
                "id": i.id,
                "status": i.status,
                "billing_reason": billing_reason_of(
                    i, snapshot.invoices, snapshot.subscription(i.subscription_id)
                ),
                "amount_due_minor": i.amount_due,
                "currency": i.currency,
                "attempt_count": i.attempt_count,
                "subscription": i.subscription_id,
                "created": _time(i.created),
            }
            for i in sorted(snapshot.invoices, key=lambda i: (i.created or 0, i.id))[-RECENT:]
        ],
        "charges": [
            {
                "id": c.id,
                "customer": c.customer_id,
                "status": c.status,
                "amount_minor": c.amount,
                "amount_refunded_minor": c.amount_refunded,
                "currency": c.currency,
                "refunded": c.refunded,
                "disputed": c.id in disputed,
                "invoice": c.invoice_id,
                "card_brand": c.card_brand,
                "card_last4": c.card_last4,
                "created": _time(c.created),
            }
            for c in sorted(snapshot.charges, key=lambda c: (c.created or 0, c.id))[-RECENT:]
        ],
        "anomalies": anomalies,
        "cases": cases,
    }


def _time(unix: int | None) -> str | None:
    """A Stripe Unix time as ISO 8601 UTC, like the cases' times."""
    try:
        return datetime.fromtimestamp(unix, UTC).isoformat() if unix is not None else None
    except (OverflowError, ValueError, OSError):  # a time no calendar holds
        return None


def _sub(sub: Any) -> dict[str, Any]:
    return {
        "id": sub.id,
        "customer": sub.customer_id,
        "status": sub.status,
        "cancel_at_period_end": sub.cancel_at_period_end,
        "items": [
            {
                "product": item.product_id,
                "price": item.price_id,
                "quantity": item.quantity,
                "unit_amount_minor": item.unit_amount,
                "currency": item.currency,
                "interval": item.interval,
            }
            for item in sub.items
        ],
    }
