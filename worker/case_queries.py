"""The one way to list cases: filters, a sort, and keyset pages with a total.

``GET /api/cases``, ``billing-ops cases list``, ``billing-ops cases export`` and the web
console all parse their parameters with ``parse_case_query`` (unknown names and bad values are
a ``CaseQueryError`` naming the parameter, never ignored) and read with ``find_cases`` (one
page) or ``iter_cases`` (every match, a page at a time, memory flat in the number of cases).

Pages are keyset pages, not offsets: a cursor is the position after the last case of a page
(its sort value and id), so cases inserted meanwhile never shift or repeat the pages that
follow, and each page costs one index range scan however deep it is.

Money at stake (``rules.findings.RevenueImpact.at_stake_minor``) is never compared across
currencies: sorting by it orders by currency code first (alphabetically; a case whose currency
is unknown comes first), then by the amount within each currency in the direction asked.
Add ``currency=usd`` for one currency's cases alone.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from rules.case_decisions import CaseStatus
from rules.currency import currency_code
from rules.findings import CLASSIFICATIONS, KINDS, SEVERITIES
from worker.case_view import CaseView, as_utc, case_view
from worker.errors import BillingOpsError
from worker.event_validation import storable_text
from worker.projection import find_person
from worker.store.db import read_session
from worker.store.tables import CaseRow

#: Cases per page unless ``limit`` says otherwise, and the most one page may hold.
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
#: Cases per read when ``iter_cases`` walks every match (the export).
ITER_BATCH = 500
#: Longest customer filter worth asking: an email column holds 320 characters, ids 255.
MAX_CUSTOMER_LENGTH = 320


class SortKey(StrEnum):
    """What a case list can be ordered by (``-`` in front of the name: descending)."""

    UPDATED_AT = "updated_at"  # the latest change
    OPENED_AT = "opened_at"  # age: ``opened_at`` is oldest first, ``-opened_at`` newest first
    AT_STAKE = "at_stake"  # money at stake, within each currency (see the module docstring)


@dataclass(frozen=True, slots=True)
class CaseSort:
    key: SortKey
    descending: bool

    @property
    def token(self) -> str:
        """The parameter value naming this sort: ``-at_stake``, ``opened_at``, …"""
        return ("-" if self.descending else "") + self.key.value


DEFAULT_SORT = CaseSort(SortKey.UPDATED_AT, descending=True)
SORT_TOKENS = tuple(CaseSort(key, desc).token for key in SortKey for desc in (True, False))


@dataclass(frozen=True, slots=True)
class CasePosition:
    """Where a page ended: the sort value(s) and id of its last case (what a cursor holds)."""

    values: tuple[Any, ...]
    case_id: int


@dataclass(frozen=True, slots=True)
class CaseQuery:
    """Which cases, in what order, how many, from where. Empty filter sets match everything."""

    statuses: frozenset[CaseStatus] = frozenset()
    kinds: frozenset[str] = frozenset()
    severities: frozenset[str] = frozenset()
    classifications: frozenset[str] = frozenset()
    customer: str | None = None  # a cus_ id or a lower-cased email: the whole person
    currency: str | None = None  # a lower-case three-letter code
    opened_since: datetime | None = None  # aware, UTC; inclusive
    updated_since: datetime | None = None  # aware, UTC; inclusive
    sort: CaseSort = DEFAULT_SORT
    limit: int = DEFAULT_LIMIT
    after: CasePosition | None = field(default=None, compare=False)

    def fingerprint(self) -> str:
        """A short digest of the filters and sort (not the limit or position): a cursor is
        only valid for the query that made it."""
        parts = {
            "status": sorted(self.statuses),
            "kind": sorted(self.kinds),
            "severity": sorted(self.severities),
            "classification": sorted(self.classifications),
            "customer": self.customer,
            "currency": self.currency,
            "opened_since": self.opened_since.isoformat() if self.opened_since else None,
            "updated_since": self.updated_since.isoformat() if self.updated_since else None,
            "sort": self.sort.token,
        }
        text = json.dumps(parts, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class CasePage:
    """One page of cases, how many match in all, and the cursor of the next page (None at
    the end)."""

    cases: tuple[CaseView, ...]
    total: int
    next_cursor: str | None


class CaseQueryError(BillingOpsError):
    """Raised when a case-list parameter is unknown or its value is not valid; ``parameter``
    names it, ``allowed`` lists the accepted values when there is a closed set."""

    def __init__(self, parameter: str, message: str, allowed: Sequence[str] = ()) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message
        self.allowed = tuple(allowed)

    @property
    def code(self) -> str:
        """The API's error code for it."""
        return "invalid_parameter"


class UnknownParameterError(CaseQueryError):
    """Raised when a case-list parameter is not one the list knows (a typo is never ignored)."""

    @property
    def code(self) -> str:
        return "unknown_parameter"


# --- parsing ------------------------------------------------------------------------------

_CHOICES: dict[str, tuple[str, tuple[str, ...]]] = {
    # parameter -> (CaseQuery field, allowed values)
    "status": ("statuses", tuple(s.value for s in CaseStatus)),
    "kind": ("kinds", tuple(sorted(KINDS))),
    "severity": ("severities", SEVERITIES),
    "classification": ("classifications", tuple(sorted(CLASSIFICATIONS))),
}
#: Every parameter the case list accepts, in the order the docs list them.
PARAMETERS = (
    "status",
    "kind",
    "severity",
    "classification",
    "customer",
    "currency",
    "opened_since",
    "updated_since",
    "sort",
    "limit",
    "cursor",
)


def parse_case_query(params: Mapping[str, str | Sequence[str]]) -> CaseQuery:
    """A ``CaseQuery`` from request-style parameters (each a string, or a list of one).

    ``status``, ``kind``, ``severity`` and ``classification`` take one value or several,
    comma-separated. Raises ``CaseQueryError`` on an unknown parameter, one given twice, or a
    bad value.
    """
    values = {name: _single(name, raw) for name, raw in params.items()}
    for name in values:
        if name not in PARAMETERS:
            raise UnknownParameterError(name, "unknown parameter", PARAMETERS)
    fields: dict[str, Any] = {}
    for name, (attribute, allowed) in _CHOICES.items():
        if name in values:
            chosen = _choices(name, values[name], allowed)
            fields[attribute] = (
                frozenset(CaseStatus(s) for s in chosen)
                if name == "status"
                else (frozenset(chosen))
            )
    if "customer" in values:
        fields["customer"] = _customer(values["customer"])
    if "currency" in values:
        code = currency_code(values["currency"])
        if code is None or code != values["currency"].strip().lower():
            raise CaseQueryError("currency", "must be a three-letter currency code, e.g. usd")
        fields["currency"] = code
    for name in ("opened_since", "updated_since"):
        if name in values:
            fields[name] = parse_instant(name, values[name])
    if "sort" in values:
        fields["sort"] = _sort(values["sort"])
    if "limit" in values:
        fields["limit"] = _limit(values["limit"])
    query = CaseQuery(**fields)
    if "cursor" in values:
        query = replace(query, after=decode_cursor(values["cursor"], query))
    return query


def _single(name: str, raw: str | Sequence[str]) -> str:
    if isinstance(raw, str):
        return raw
    if len(raw) != 1:
        raise CaseQueryError(name, "give it once (several values: separate them with commas)")
    return raw[0]


def _choices(name: str, value: str, allowed: Sequence[str]) -> list[str]:
    chosen = [part.strip() for part in value.split(",")]
    for part in chosen:
        if part not in allowed:
            raise CaseQueryError(name, f"{part!r} is not one of the allowed values", allowed)
    return chosen


def _customer(value: str) -> str:
    text = value.strip()
    if not storable_text(text, MAX_CUSTOMER_LENGTH):
        raise CaseQueryError(
            "customer", f"at most {MAX_CUSTOMER_LENGTH} characters, no NUL, valid UTF-8"
        )
    if "@" in text:
        return text.lower()
    if text.startswith("cus_") and len(text) > len("cus_"):
        return text
    raise CaseQueryError("customer", "give a cus_ id or an email address")


def parse_instant(name: str, value: str) -> datetime:
    """An ISO 8601 date or date-time as an aware UTC datetime; without an offset it is UTC."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise CaseQueryError(
            name, "must be an ISO 8601 date or date-time, e.g. 2026-11-01T00:00:00Z"
        ) from None
    return as_utc(moment)


def _sort(value: str) -> CaseSort:
    for key in SortKey:
        for descending in (True, False):
            if value == CaseSort(key, descending).token:
                return CaseSort(key, descending)
    raise CaseQueryError("sort", f"{value!r} is not one of the allowed values", SORT_TOKENS)


def _limit(value: str) -> int:
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise CaseQueryError("limit", f"must be a whole number from 1 to {MAX_LIMIT}")
    return int(value)


# --- cursors ------------------------------------------------------------------------------


def encode_cursor(query: CaseQuery, position: CasePosition) -> str:
    """The opaque text a caller passes back as ``cursor`` for the next page."""
    values = [v.isoformat() if isinstance(v, datetime) else v for v in position.values]
    doc = {"q": query.fingerprint(), "k": values, "id": position.case_id}
    text = json.dumps(doc, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(text).decode().rstrip("=")


def decode_cursor(cursor: str, query: CaseQuery) -> CasePosition:
    """The position a cursor of ``encode_cursor`` names, for this same query only."""
    try:
        padded = cursor.strip() + "=" * (-len(cursor.strip()) % 4)
        doc = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        fingerprint, raw, case_id = doc["q"], doc["k"], doc["id"]
        values = _position_values(query.sort.key, raw)
        if type(case_id) is not int or not isinstance(fingerprint, str):
            raise ValueError("malformed")
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError):
        raise CaseQueryError("cursor", "is not a cursor this API gave out") from None
    if fingerprint != query.fingerprint():
        raise CaseQueryError(
            "cursor", "belongs to a different query (filters or sort changed): start again"
        )
    return CasePosition(values, case_id)


def _position_values(key: SortKey, raw: Any) -> tuple[Any, ...]:
    if key is SortKey.AT_STAKE:
        currency, amount = raw
        if not isinstance(currency, str) or type(amount) is not int:
            raise ValueError("malformed")
        return (currency, amount)
    (moment,) = raw
    return (as_utc(datetime.fromisoformat(moment)),)


# --- reading ------------------------------------------------------------------------------


def _sort_columns(sort: CaseSort) -> list[tuple[InstrumentedAttribute[Any], bool]]:
    """The ordered (column, descending) pairs of a sort; the id last breaks every tie."""
    desc = sort.descending
    if sort.key is SortKey.AT_STAKE:
        return [(CaseRow.currency, False), (CaseRow.at_stake_minor, desc), (CaseRow.id, desc)]
    column = CaseRow.opened_at if sort.key is SortKey.OPENED_AT else CaseRow.updated_at
    return [(column, desc), (CaseRow.id, desc)]


def _position_of(row: CaseRow, sort: CaseSort) -> CasePosition:
    if sort.key is SortKey.AT_STAKE:
        return CasePosition((row.currency, row.at_stake_minor), row.id)
    moment = row.opened_at if sort.key is SortKey.OPENED_AT else row.updated_at
    return CasePosition((as_utc(moment),), row.id)


def _after(sort: CaseSort, position: CasePosition) -> ColumnElement[bool]:
    """Rows strictly after ``position`` in ``sort`` order (a row-value comparison spelled
    out, since the columns may run in different directions)."""
    columns = _sort_columns(sort)
    values = (*position.values, position.case_id)
    clauses = []
    for i, (column, descending) in enumerate(columns):
        ties = [c == v for (c, _), v in zip(columns[:i], values[:i], strict=True)]
        beyond = column < values[i] if descending else column > values[i]
        clauses.append(and_(*ties, beyond))
    return or_(*clauses)


def _filters(session: Session, query: CaseQuery) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = []
    if query.statuses:
        filters.append(CaseRow.status.in_(sorted(query.statuses)))
    if query.kinds:
        filters.append(CaseRow.kind.in_(sorted(query.kinds)))
    if query.severities:
        filters.append(CaseRow.severity.in_(sorted(query.severities)))
    if query.classifications:
        filters.append(CaseRow.classification.in_(sorted(query.classifications)))
    if query.customer is not None:
        filters.append(CaseRow.customer_id.in_(sorted(_customer_ids(session, query.customer))))
    if query.currency is not None:
        filters.append(CaseRow.currency == query.currency)
    if query.opened_since is not None:
        filters.append(CaseRow.opened_at >= query.opened_since)
    if query.updated_since is not None:
        filters.append(CaseRow.updated_at >= query.updated_since)
    return filters


def _customer_ids(session: Session, customer: str) -> frozenset[str]:
    """Every customer record of the person a cus_ id or an email names (shared email)."""
    if "@" in customer:
        return find_person(session, [], [customer]).customer_ids
    return find_person(session, [customer], []).customer_ids | {customer}


def find_cases(engine: Engine, query: CaseQuery) -> CasePage:
    """One page of the cases ``query`` matches, in its order, with the total and the next
    page's cursor."""
    with read_session(engine) as session:
        filters = _filters(session, query)
        total = session.scalar(select(func.count()).select_from(CaseRow).where(*filters)) or 0
        views, last = _read(session, query, filters)
    cursor = encode_cursor(query, last) if last is not None else None
    return CasePage(views, total, cursor)


def _read(
    session: Session, query: CaseQuery, filters: list[ColumnElement[bool]]
) -> tuple[tuple[CaseView, ...], CasePosition | None]:
    """Up to ``query.limit`` cases after ``query.after``, and the position to continue from
    (None when nothing follows)."""
    statement = select(CaseRow).where(*filters)
    if query.after is not None:
        statement = statement.where(_after(query.sort, query.after))
    order = [c.desc() if desc else c.asc() for c, desc in _sort_columns(query.sort)]
    rows = session.scalars(statement.order_by(*order).limit(query.limit + 1)).all()
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    last = _position_of(rows[-1], query.sort) if more else None
    return tuple(case_view(row) for row in rows), last


def iter_cases(engine: Engine, query: CaseQuery, *, batch: int = ITER_BATCH) -> Iterator[CaseView]:
    """Every case ``query`` matches from its position on, in its order, read ``batch`` at a
    time, each batch in its own short read transaction (memory stays flat however many
    cases match; no total is counted)."""
    page_query = replace(query, limit=batch)
    while True:
        with read_session(engine) as session:
            views, last = _read(session, page_query, _filters(session, page_query))
        yield from views
        if last is None:
            return
        page_query = replace(page_query, after=last)
