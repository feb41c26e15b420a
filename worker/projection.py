"""The billing projection in the store: newest snapshot of each object, grouped by person.

Which snapshot wins is decided by ``rules.supersedes`` (a pure total order), so the stored
state is the same whatever order Stripe delivered the events in.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_, select, union
from sqlalchemy.orm import Session

from rules import (
    BillingSnapshot,
    ObjectRecord,
    build_snapshot,
    combine,
    record_from_json,
    record_to_json,
    supersedes,
)
from rules.model import Subscription
from worker.store.tables import ObjectRow


@dataclass(frozen=True)
class Person:
    """Every customer record that belongs to one human (shared email), and their emails."""

    customer_ids: frozenset[str]
    emails: frozenset[str]

    @property
    def lock_keys(self) -> list[str]:
        return sorted([f"cus:{c}" for c in self.customer_ids] + [f"email:{e}" for e in self.emails])


#: Objects that name a charge but no customer: their customer is the charge's.
CHARGE_LINKED_TYPES = ("dispute", "early_fraud_warning")


def _link_id(record: ObjectRecord) -> str | None:
    if record.object_type not in CHARGE_LINKED_TYPES:
        return None
    return getattr(record.data, "charge_id", None)


def resolve_customer(session: Session, record: ObjectRecord) -> str | None:
    """The record's customer, or (for a dispute) the customer of the charge it disputes."""
    if record.customer_id:
        return record.customer_id
    link = _link_id(record)
    if link:
        return session.scalar(
            select(ObjectRow.customer_id).where(
                ObjectRow.object_type == "charge", ObjectRow.object_id == link
            )
        )
    return None


def find_person(session: Session, customer_ids: Iterable[str], emails: Iterable[str]) -> Person:
    """Expand ids and emails to the whole person: every customer sharing one of the emails.

    One statement: the rows whose email is one of the given ones or one of the emails the
    given customers' rows carry; their customer ids and emails join the person. The two
    conditions are a UNION rather than an OR: PostgreSQL plans ``email IN (…) OR email IN
    (subquery)`` as a scan of the whole table (seconds at a million customers), each branch
    alone as an index lookup."""
    ids = {c for c in customer_ids if c}
    mails = {e for e in emails if e}
    pair = (ObjectRow.customer_id, ObjectRow.email)
    by_own_emails = by_emails = None
    if ids:
        own_emails = select(ObjectRow.email).where(
            ObjectRow.customer_id.in_(ids), ObjectRow.email.is_not(None)
        )
        by_own_emails = select(*pair).where(ObjectRow.email.in_(own_emails))
    if mails:
        by_emails = select(*pair).where(ObjectRow.email.in_(mails))
    if by_own_emails is not None and by_emails is not None:
        rows = session.execute(union(by_own_emails, by_emails)).all()
    elif by_own_emails is not None:
        rows = session.execute(by_own_emails).all()
    elif by_emails is not None:
        rows = session.execute(by_emails).all()
    else:
        rows = []
    for customer_id, email in rows:
        if email is not None:
            mails.add(email)
        if customer_id is not None:
            ids.add(customer_id)
    return Person(customer_ids=frozenset(ids), emails=frozenset(mails))


def apply_record(
    session: Session, record: ObjectRecord, customer_id: str | None, now: datetime
) -> bool:
    """Store ``record`` unless the stored snapshot is newer; True when it was stored. A newer
    stored snapshot still takes what ``record`` knew that only accumulates
    (``rules.records.combine``)."""
    row = session.get(ObjectRow, (record.object_type, record.object_id))
    if row is not None:
        current = record_from_json(json.loads(row.data))
        if not supersedes(record, current):
            kept = combine(record, current)
            if kept != current:
                row.data = json.dumps(record_to_json(kept), sort_keys=True, separators=(",", ":"))
                row.updated_at = now
            return False
        record = combine(record, current)
    doc = json.dumps(record_to_json(record), sort_keys=True, separators=(",", ":"))
    version = json.dumps(list(record.version), separators=(",", ":"))
    if row is None:
        row = ObjectRow(object_type=record.object_type, object_id=record.object_id)
        session.add(row)
    row.customer_id = customer_id or (row.customer_id if row.customer_id else None)
    row.email = record.email or row.email
    row.link_id = _link_id(record)
    row.version = version
    row.partial = record.partial
    row.data = doc
    row.updated_at = now
    if record.object_type == "charge" and customer_id:
        _adopt_disputes(session, record.object_id, customer_id)
    return True


def _adopt_disputes(session: Session, charge_id: str, customer_id: str) -> None:
    """A dispute (or fraud warning) seen before its charge gets the charge's customer once the
    charge is known."""
    for row in session.scalars(
        select(ObjectRow).where(
            ObjectRow.object_type.in_(CHARGE_LINKED_TYPES),
            ObjectRow.link_id == charge_id,
            ObjectRow.customer_id.is_(None),
        )
    ):
        row.customer_id = customer_id


def load_snapshot(
    session: Session, person: Person, objects: Iterable[tuple[str, str]] = ()
) -> BillingSnapshot:
    """Every stored object of the person, plus ``objects`` ((type, id) keys: the event's own,
    so a dispute on a charge billing-ops never saw is still evaluated without a customer)."""
    keys = sorted(set(objects))
    if not person.customer_ids and not person.emails and not keys:
        return build_snapshot(())
    clauses: list[ColumnElement[bool]] = []
    for object_type, object_id in keys:
        clauses.append(and_(ObjectRow.object_type == object_type, ObjectRow.object_id == object_id))
    if person.customer_ids:
        clauses.append(ObjectRow.customer_id.in_(person.customer_ids))
    if person.emails:
        clauses.append(ObjectRow.email.in_(person.emails))
    rows = session.scalars(select(ObjectRow.data).where(or_(*clauses))).all()
    records = [record_from_json(json.loads(data)) for data in rows]
    return build_snapshot([*records, *load_products(session, product_ids_of(records))])


def product_ids_of(records: Iterable[ObjectRecord]) -> set[str]:
    """The products the subscriptions among ``records`` pay for."""
    ids: set[str] = set()
    for record in records:
        if isinstance(record.data, Subscription):
            ids |= record.data.product_ids
    return ids


def load_products(session: Session, product_ids: Iterable[str]) -> list[ObjectRecord]:
    """Stored product records (shared by every customer, so not found through the person)."""
    ids = sorted(set(product_ids))
    if not ids:
        return []
    rows = session.scalars(
        select(ObjectRow.data).where(
            ObjectRow.object_type == "product", ObjectRow.object_id.in_(ids)
        )
    )
    return [record_from_json(json.loads(data)) for data in rows]


def products_to_fetch(
    session: Session,
    person: Person,
    records: Iterable[ObjectRecord],
    *,
    now: int,
    ttl_seconds: int,
    api_prefix: str,
) -> set[str]:
    """Products the person's subscriptions (stored, or in this event) name whose name is not
    known yet, or was fetched from the API (event id ``api_prefix…``) more than ttl ago."""
    ids = product_ids_of(records)
    if person.customer_ids:
        rows = session.scalars(
            select(ObjectRow).where(
                ObjectRow.object_type == "subscription",
                ObjectRow.customer_id.in_(person.customer_ids),
            )
        )
        ids |= product_ids_of(record_from_json(json.loads(row.data)) for row in rows)
    fresh = {
        record.object_id
        for record in load_products(session, ids)
        if getattr(record.data, "name", None)
        and not (
            str(getattr(record.data, "event_id", "")).startswith(api_prefix)
            and isinstance(record.version[1], int)
            and record.version[1] < now - ttl_seconds
        )
    }
    return ids - fresh
