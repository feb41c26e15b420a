"""The billing projection in the store: newest snapshot of each object, grouped by person.

Which snapshot wins is decided by ``rules.supersedes`` (a pure total order), so the stored
state is the same whatever order Stripe delivered the events in.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, and_, bindparam, or_, select, union
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


_PAIR = (ObjectRow.customer_id, ObjectRow.email)
#: ``find_person``'s statements, built once (a statement built per call costs more than the
#: lookup itself): the rows sharing an email with the given customers' rows, and the rows
#: carrying one of the given emails. Expanding parameters take the lists at execution.
_BY_OWN_EMAILS = select(*_PAIR).where(
    ObjectRow.email.in_(
        select(ObjectRow.email).where(
            ObjectRow.customer_id.in_(bindparam("ids", expanding=True)),
            ObjectRow.email.is_not(None),
        )
    )
)
_BY_EMAILS = select(*_PAIR).where(ObjectRow.email.in_(bindparam("emails", expanding=True)))
_BY_BOTH = union(_BY_OWN_EMAILS, _BY_EMAILS)


def find_person(session: Session, customer_ids: Iterable[str], emails: Iterable[str]) -> Person:
    """Expand ids and emails to the whole person: every customer sharing an email with one of
    them, and so on until no new customer turns up (usually one statement: a person's rows
    name only the person's customers).

    Each round is one statement: the rows whose email is one of the round's new ones or one
    of the emails the round's new customers' rows carry; their customer ids and emails join
    the person. The two conditions are a UNION rather than an OR: PostgreSQL plans ``email IN
    (…) OR email IN (subquery)`` as a scan of the whole table (seconds at a million
    customers), each branch alone as an index lookup. Being the whole person (a fixed point),
    a person whose new records name only their own ids and emails stays who they were
    (``same_person_after``)."""
    ids = {c for c in customer_ids if c}
    mails = {e for e in emails if e}
    new_ids, new_mails = set(ids), set(mails)
    while new_ids or new_mails:
        params = {"ids": sorted(new_ids), "emails": sorted(new_mails)}
        if new_ids and new_mails:
            rows = session.execute(_BY_BOTH, params).all()
        elif new_ids:
            rows = session.execute(_BY_OWN_EMAILS, params).all()
        else:
            rows = session.execute(_BY_EMAILS, params).all()
        new_ids = {c for c, _e in rows if c is not None} - ids
        # Every row carrying an email of this answer is in it (each branch returns all rows
        # of the emails it matched), so only the new customers' other emails are left.
        new_mails = set()
        ids |= new_ids
        mails |= {e for _c, e in rows if e is not None}
    return Person(customer_ids=frozenset(ids), emails=frozenset(mails))


def same_person_after(
    person: Person, records: Iterable[ObjectRecord], customer_ids: Iterable[str | None]
) -> bool:
    """Whether ``person`` (a ``find_person`` answer read in this transaction) is still the
    whole person once ``records`` (with their resolved ``customer_ids``) are stored: none of
    them names a customer or an email outside it, so they add no link out of it."""
    return all(c is None or c in person.customer_ids for c in customer_ids) and all(
        r.email is None or r.email in person.emails for r in records
    )


#: Stored rows by (type, id) as a batch read them up front (None: not stored), so each
#: record's row is not asked for one at a time (``preload_rows``).
KnownRows = dict[tuple[str, str], ObjectRow | None]


def preload_rows(session: Session, keys: Iterable[tuple[str, str]]) -> KnownRows:
    """The stored rows of ``keys`` ((type, id)) in one statement, None for those not stored.

    For a batch whose persons are locked: a row of theirs appears only through this
    transaction. A row nobody's lock covers (a product, an unowned dispute) inserted by
    another worker meanwhile makes this transaction's insert fail on the primary key, and the
    batch is redone event by event (``worker.actors``), never merged wrongly."""
    wanted = sorted(set(keys))
    known: KnownRows = dict.fromkeys(wanted)
    by_type: dict[str, list[str]] = {}
    for object_type, object_id in wanted:
        by_type.setdefault(object_type, []).append(object_id)
    if by_type:
        clauses = [
            and_(ObjectRow.object_type == object_type, ObjectRow.object_id.in_(ids))
            for object_type, ids in by_type.items()
        ]
        for row in session.scalars(select(ObjectRow).where(or_(*clauses))):
            known[(row.object_type, row.object_id)] = row
    return known


def apply_record(
    session: Session,
    record: ObjectRecord,
    customer_id: str | None,
    now: datetime,
    known: KnownRows | None = None,
) -> bool:
    """Store ``record`` unless the stored snapshot is newer; True when it was stored. A newer
    stored snapshot still takes what ``record`` knew that only accumulates
    (``rules.records.combine``). ``known``: the rows a batch preloaded, kept up to date."""
    key = (record.object_type, record.object_id)
    row = known[key] if known is not None and key in known else session.get(ObjectRow, key)
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
        if known is not None:
            known[key] = row
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
    for row in session.scalars(_UNOWNED_LINKED, {"charge": charge_id}):
        row.customer_id = customer_id


_UNOWNED_LINKED = select(ObjectRow).where(
    ObjectRow.object_type.in_(CHARGE_LINKED_TYPES),
    ObjectRow.link_id == bindparam("charge"),
    ObjectRow.customer_id.is_(None),
)


def load_snapshot(
    session: Session, person: Person, objects: Iterable[tuple[str, str]] = ()
) -> BillingSnapshot:
    """Every stored object of the person, plus ``objects`` ((type, id) keys: the event's own,
    so a dispute on a charge billing-ops never saw is still evaluated without a customer)."""
    keys = sorted(set(objects))
    if not person.customer_ids and not person.emails and not keys:
        return build_snapshot(())
    params: dict[str, object] = {
        "ids": sorted(person.customer_ids),
        "emails": sorted(person.emails),
    }
    for index, (object_type, object_id) in enumerate(keys):
        params[f"type_{index}"], params[f"id_{index}"] = object_type, object_id
    statement = _snapshot_statement(len(keys), bool(person.customer_ids), bool(person.emails))
    rows = session.scalars(statement, params).all()
    records = [record_from_json(json.loads(data)) for data in rows]
    return build_snapshot([*records, *load_products(session, product_ids_of(records))])


@functools.lru_cache(maxsize=32)
def _snapshot_statement(objects: int, by_ids: bool, by_emails: bool) -> Select[str]:
    """``load_snapshot``'s statement for one shape (how many object keys, whether there are
    customer ids and emails), built once: building it per call cost more than running it."""
    clauses: list[ColumnElement[bool]] = [
        and_(
            ObjectRow.object_type == bindparam(f"type_{index}"),
            ObjectRow.object_id == bindparam(f"id_{index}"),
        )
        for index in range(objects)
    ]
    if by_ids:
        clauses.append(ObjectRow.customer_id.in_(bindparam("ids", expanding=True)))
    if by_emails:
        clauses.append(ObjectRow.email.in_(bindparam("emails", expanding=True)))
    return select(ObjectRow.data).where(or_(*clauses))


def product_ids_of(records: Iterable[ObjectRecord]) -> set[str]:
    """The products the subscriptions among ``records`` pay for."""
    ids: set[str] = set()
    for record in records:
        if isinstance(record.data, Subscription):
            ids |= record.data.product_ids
    return ids


_PRODUCTS = select(ObjectRow.data).where(
    ObjectRow.object_type == "product", ObjectRow.object_id.in_(bindparam("ids", expanding=True))
)


def load_products(session: Session, product_ids: Iterable[str]) -> list[ObjectRecord]:
    """Stored product records (shared by every customer, so not found through the person)."""
    ids = sorted(set(product_ids))
    if not ids:
        return []
    rows = session.scalars(_PRODUCTS, {"ids": ids})
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
