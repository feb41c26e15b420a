"""The queue page's data, read through ``worker.case_queries`` (the one way to list cases):
one page of cases for the operator's filters, the total, and counts per kind.

Money at stake sorts as the case list sorts it: by currency, then the amount within it (never
compared across currencies). Severity, which the case list does not sort by, is read level by
level (critical first, each level oldest first) with the severity filter, so every page is
still one keyset range scan per level it touches.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Engine

from rules.case_decisions import CaseStatus
from rules.findings import CLASSIFICATIONS, KINDS, SEVERITIES
from rules.formatting import format_money
from worker.case_queries import (
    CaseQuery,
    CaseQueryError,
    CaseSort,
    SortKey,
    decode_cursor,
    find_cases,
)
from worker.case_view import CaseView

#: Rows on one page: enough to scan, few enough to render in milliseconds.
PAGE_SIZE = 50
#: "unresolved": every case someone still has to finish (open or acknowledged).
UNRESOLVED = "unresolved"
STATUS_CHOICES = (UNRESOLVED, *(s.value for s in CaseStatus), "all")
#: Most severe first.
LEVELS = tuple(reversed(SEVERITIES))
#: The longest customer filter worth asking (an email column holds 320 characters).
MAX_CUSTOMER_LENGTH = 320


class QueueSort(StrEnum):
    """How the queue is ordered."""

    STAKE = "stake"  # money at stake, most first (within each currency)
    AGE = "age"  # oldest first
    SEVERITY = "severity"  # most severe first, then oldest


@dataclass(frozen=True, slots=True)
class QueueFilters:
    """What the operator asked for; values outside the vocabularies are dropped."""

    status: str = UNRESOLVED
    kind: str | None = None
    classification: str | None = None
    customer: str | None = None
    sort: QueueSort = QueueSort.STAKE
    cursor: str | None = None

    @classmethod
    def from_args(cls, args: dict[str, str]) -> QueueFilters:
        status = args.get("status") or UNRESOLVED
        kind = args.get("kind") or None
        classification = args.get("classification") or None
        customer = (args.get("customer") or "").strip()[:MAX_CUSTOMER_LENGTH] or None
        try:
            sort = QueueSort(args.get("sort") or QueueSort.STAKE)
        except ValueError:
            sort = QueueSort.STAKE
        return cls(
            status=status if status in STATUS_CHOICES else UNRESOLVED,
            kind=kind if kind in KINDS else None,
            classification=classification if classification in CLASSIFICATIONS else None,
            customer=customer,
            sort=sort,
            cursor=(args.get("cursor") or "")[:2000] or None,
        )


@dataclass(frozen=True, slots=True)
class QueueRow:
    id: int
    status: str
    severity: str
    kind: str
    classification: str
    at_stake: str
    opened_at: datetime
    customer_id: str
    customer_name: str | None
    email_masked: str | None


@dataclass(frozen=True, slots=True)
class QueuePage:
    rows: tuple[QueueRow, ...]
    total: int
    counts_by_kind: tuple[tuple[str, int], ...]
    next_cursor: str | None
    first_page: bool


def _base_query(filters: QueueFilters) -> CaseQuery:
    """The case list's query for these filters (all kinds), with no sort or position yet."""
    if filters.status == UNRESOLVED:
        statuses = frozenset({CaseStatus.OPEN, CaseStatus.ACKNOWLEDGED})
    elif filters.status == "all":
        statuses = frozenset()
    else:
        statuses = frozenset({CaseStatus(filters.status)})
    customer = filters.customer
    if customer is not None:
        customer = customer.lower() if "@" in customer else customer
    return CaseQuery(
        statuses=statuses,
        classifications=frozenset({filters.classification})
        if filters.classification
        else frozenset(),
        customer=customer,
        limit=PAGE_SIZE,
    )


def queue_page(engine: Engine, filters: QueueFilters) -> QueuePage:
    """One page of the queue, its total and the counts per kind under the same filters."""
    base = _base_query(filters)
    if (
        base.customer is not None
        and "@" not in base.customer
        and not base.customer.startswith("cus_")
    ):
        return QueuePage((), 0, (), None, True)  # neither an email nor a customer id: no one
    counts = tuple(
        (kind, find_cases(engine, replace(base, kinds=frozenset({kind}), limit=1)).total)
        for kind in sorted(KINDS)
    )
    query = replace(base, kinds=frozenset({filters.kind}) if filters.kind else frozenset())
    try:
        if filters.sort is QueueSort.SEVERITY:
            views, total, cursor = _by_severity(engine, query, filters.cursor)
        else:
            sort = (
                CaseSort(SortKey.AT_STAKE, descending=True)
                if filters.sort is QueueSort.STAKE
                else CaseSort(SortKey.OPENED_AT, descending=False)
            )
            query = replace(query, sort=sort)
            if filters.cursor:
                query = replace(query, after=decode_cursor(filters.cursor, query))
            page = find_cases(engine, query)
            views, total, cursor = page.cases, page.total, page.next_cursor
    except CaseQueryError:  # a cursor from another filter or sort: start from the top
        return queue_page(engine, replace(filters, cursor=None))
    return QueuePage(
        rows=tuple(_row(view) for view in views),
        total=total,
        counts_by_kind=tuple((k, n) for k, n in counts if n),
        next_cursor=cursor,
        first_page=filters.cursor is None,
    )


def _by_severity(
    engine: Engine, query: CaseQuery, cursor: str | None
) -> tuple[tuple[CaseView, ...], int, str | None]:
    """Critical first, then high, medium, low; oldest first within each. The cursor is
    ``LEVEL:`` followed by the case list's cursor inside that level."""
    level, _, inner = (cursor or f"{LEVELS[0]}:").partition(":")
    if level not in LEVELS:
        raise CaseQueryError("cursor", "is not a cursor this page gave out")
    oldest_first = CaseSort(SortKey.OPENED_AT, descending=False)
    start = LEVELS.index(level)
    views: list[CaseView] = []
    total = 0
    next_cursor: str | None = None
    for index, name in enumerate(LEVELS):
        level_query = replace(query, severities=frozenset({name}), sort=oldest_first)
        if index < start or len(views) >= PAGE_SIZE:  # only counted
            count = find_cases(engine, replace(level_query, limit=1)).total
            total += count
            if index > start and count and next_cursor is None:
                next_cursor = f"{name}:"
            continue
        if name == level and inner:
            level_query = replace(level_query, after=decode_cursor(inner, level_query))
        page = find_cases(engine, replace(level_query, limit=PAGE_SIZE - len(views)))
        total += page.total
        views.extend(page.cases)
        if page.next_cursor is not None:
            next_cursor = f"{name}:{page.next_cursor}"
    return tuple(views), total, next_cursor


def _row(view: CaseView) -> QueueRow:
    return QueueRow(
        id=view.id,
        status=view.status.value,
        severity=view.severity,
        kind=view.kind,
        classification=view.classification,
        at_stake=format_money(view.at_stake_minor, view.currency),
        opened_at=view.opened_at,
        customer_id=view.customer.id,
        customer_name=view.customer.name,
        email_masked=view.customer.email_masked,
    )
