"""The queue page's data: one page of cases for the operator's filters, plus counts per kind.

Money at stake is ranked in the severity currency (``RulesConfig.severity_currency``, the same
conversion severity uses); a case whose currency has no rate ranks after every known amount.
The page shows each amount in its own currency, never a converted one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import JSON, Engine, case, cast, func, select, type_coerce
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from rules import RulesConfig
from rules.currency import convert_minor
from rules.findings import CLASSIFICATIONS, KINDS, SEVERITIES
from rules.formatting import format_money
from worker.case_document import load_document
from worker.cases import STATUSES
from worker.store.db import read_session
from worker.store.tables import CaseRow, ObjectRow

Q = TypeVar("Q", bound=Select)  # any select over the cases table

#: Rows on one page: enough to scan, few enough to render in milliseconds.
PAGE_SIZE = 50
#: "unresolved": every case someone still has to finish (open or acknowledged).
UNRESOLVED = "unresolved"
STATUS_CHOICES = (UNRESOLVED, *STATUSES, "all")


class QueueSort(StrEnum):
    """How the queue is ordered; every order ends on the case id so pages never overlap."""

    STAKE = "stake"  # money at stake, most first
    AGE = "age"  # oldest first
    SEVERITY = "severity"  # most severe first, then oldest


@dataclass(frozen=True, slots=True)
class QueueFilters:
    """What the operator asked for, already checked against the vocabularies."""

    status: str = UNRESOLVED
    kind: str | None = None
    classification: str | None = None
    customer: str | None = None
    sort: QueueSort = QueueSort.STAKE
    page: int = 1

    @classmethod
    def from_args(cls, args: dict[str, str]) -> QueueFilters:
        """From the query string; an unknown value is ignored (the page shows every case)."""
        status = args.get("status") or UNRESOLVED
        kind = args.get("kind") or None
        classification = args.get("classification") or None
        customer = (args.get("customer") or "").strip()[:320] or None
        try:
            sort = QueueSort(args.get("sort") or QueueSort.STAKE)
        except ValueError:
            sort = QueueSort.STAKE
        try:
            page = max(1, min(int(args.get("page") or 1), 1_000_000))
        except ValueError:
            page = 1
        return cls(
            status=status if status in STATUS_CHOICES else UNRESOLVED,
            kind=kind if kind in KINDS else None,
            classification=classification if classification in CLASSIFICATIONS else None,
            customer=customer,
            sort=sort,
            page=page,
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
    page: int
    pages: int


def _filtered(query: Q, filters: QueueFilters) -> Q:
    """``query`` narrowed to the status, classification and customer asked for."""
    if filters.status == UNRESOLVED:
        query = query.where(CaseRow.status != "resolved")
    elif filters.status != "all":
        query = query.where(CaseRow.status == filters.status)
    if filters.classification:
        query = query.where(CaseRow.classification == filters.classification)
    if filters.customer and "@" in filters.customer:
        # Every customer record carrying that email (one person may have several).
        records = select(ObjectRow.object_id).where(
            ObjectRow.object_type == "customer", ObjectRow.email == filters.customer.lower()
        )
        query = query.where(CaseRow.customer_id.in_(records))
    elif filters.customer:
        query = query.where(CaseRow.customer_id == filters.customer)
    return query


def _severity_rank() -> Any:
    return case(
        {severity: rank for rank, severity in enumerate(SEVERITIES)}, value=CaseRow.severity
    )


def queue_page(engine: Engine, filters: QueueFilters, config: RulesConfig) -> QueuePage:
    """One page of the queue, its total and the counts per kind under the same filters."""
    with read_session(engine) as session:
        per_kind = _filtered(select(CaseRow.kind, func.count()).group_by(CaseRow.kind), filters)
        counts: dict[str, int] = {kind: count for kind, count in session.execute(per_kind)}
        base = _filtered(select(CaseRow), filters)
        if filters.kind:
            base = base.where(CaseRow.kind == filters.kind)
        total = counts.get(filters.kind, 0) if filters.kind else sum(counts.values())
        offset = (filters.page - 1) * PAGE_SIZE
        if filters.sort is QueueSort.STAKE:
            ids = _ids_by_stake(session, base, config)[offset : offset + PAGE_SIZE]
            by_id = {
                row.id: row
                for row in session.scalars(select(CaseRow).where(CaseRow.id.in_(ids or [0])))
            }
            rows = [by_id[i] for i in ids if i in by_id]
        else:
            order = (
                (CaseRow.opened_at.asc(), CaseRow.id.asc())
                if filters.sort is QueueSort.AGE
                else (_severity_rank().desc(), CaseRow.opened_at.asc(), CaseRow.id.asc())
            )
            rows = list(session.scalars(base.order_by(*order).offset(offset).limit(PAGE_SIZE)))
        shown = tuple(_row(row) for row in rows)
    pages = max(1, -(-total // PAGE_SIZE))
    return QueuePage(
        rows=shown,
        total=total,
        counts_by_kind=tuple(sorted(counts.items())),
        page=filters.page,
        pages=pages,
    )


def _impact_columns(session: Session) -> tuple[Any, Any, Any]:
    """The stored finding's amount, MRR at risk and currency, extracted by the database (its
    JSON functions run in C; parsing 10,000 findings in Python took a quarter second)."""
    sqlite = session.get_bind().dialect.name == "sqlite"
    # SQLite reads JSON from text as it is; PostgreSQL needs the text cast to json first.
    doc = type_coerce(CaseRow.finding, JSON) if sqlite else cast(CaseRow.finding, JSON)
    return (
        doc[("revenue_impact", "amount_minor")].as_integer(),
        doc[("revenue_impact", "mrr_at_risk_minor")].as_integer(),
        doc[("revenue_impact", "currency")].as_string(),
    )


def _ids_by_stake(session: Session, base: Q, config: RulesConfig) -> list[int]:
    """Case ids, most money at stake first (in the severity currency), unknown last."""
    keyed: list[tuple[int, Decimal, int]] = []
    rate: dict[str | None, Decimal | None] = {}
    query = base.with_only_columns(CaseRow.id, *_impact_columns(session))
    for case_id, amount, mrr, currency in session.execute(query):
        stake = amount or mrr
        if currency not in rate:  # the factor of one minor unit, once per currency
            rate[currency] = convert_minor(
                1_000_000, currency, config.severity_currency, config.rates
            )
        factor = rate[currency]
        value = None if factor is None or type(stake) is not int else stake * factor
        keyed.append((0 if value is not None else 1, -(value or Decimal(0)), case_id))
    keyed.sort()
    return [case_id for _, _, case_id in keyed]


def _row(row: CaseRow) -> QueueRow:
    document = load_document(row.finding, row.customer_id)
    impact = document.finding.revenue_impact
    amount = impact.amount_minor or impact.mrr_at_risk_minor
    opened = row.opened_at if row.opened_at.tzinfo else row.opened_at.replace(tzinfo=UTC)
    return QueueRow(
        id=row.id,
        status=row.status,
        severity=row.severity,
        kind=row.kind,
        classification=row.classification,
        at_stake=format_money(amount, impact.currency),
        opened_at=opened,
        customer_id=row.customer_id,
        customer_name=document.customer.name,
        email_masked=document.customer.email_masked,
    )
