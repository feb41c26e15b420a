"""The schema, as SQLAlchemy 2 declarative tables. Alembic migrations create it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, desc
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class EventRow(Base):
    """Every Stripe event received, once (unique id), with how its processing went."""

    __tablename__ = "events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100), index=True)
    created: Mapped[int] = mapped_column(BigInteger)
    livemode: Mapped[bool] = mapped_column(Boolean, default=False)
    api_version: Mapped[str | None] = mapped_column(String(32))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)  # received|processed|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    customer_id: Mapped[str | None] = mapped_column(String(255), index=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ObjectRow(Base):
    """The projection: the newest known snapshot of each Stripe object, as rules records."""

    __tablename__ = "objects"

    object_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    object_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    customer_id: Mapped[str | None] = mapped_column(String(255), index=True)
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    link_id: Mapped[str | None] = mapped_column(String(255), index=True)  # dispute → charge
    version: Mapped[str] = mapped_column(Text)  # JSON list, compared by rules.supersedes
    partial: Mapped[bool] = mapped_column(Boolean, default=False)
    data: Mapped[str] = mapped_column(Text)  # JSON of rules.record_to_json
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CaseRow(Base):
    """One triage case per problem key (kind + primary subject).

    ``currency`` and ``at_stake_minor`` repeat the finding's money at stake in columns so the
    case list can filter and sort on them with an index (``worker/case_queries.py``)."""

    __tablename__ = "cases"
    __table_args__ = (
        # One per sort (the id breaks ties); money has both amount directions, the currency
        # always ascending (worker/case_queries.py).
        Index("ix_cases_money", "currency", "at_stake_minor", "id"),
        Index("ix_cases_money_desc", "currency", desc("at_stake_minor"), desc("id")),
        Index("ix_cases_opened", "opened_at", "id"),
        Index("ix_cases_updated", "updated_at", "id"),
        # Every filter column: the list's total is counted from this index alone.
        Index(
            "ix_cases_filters",
            "status",
            "severity",
            "kind",
            "classification",
            "currency",
            "customer_id",
            "opened_at",
            "updated_at",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # open|acknowledged|resolved
    kind: Mapped[str] = mapped_column(String(40), index=True)
    classification: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(16))
    customer_id: Mapped[str] = mapped_column(String(255), index=True)
    finding: Mapped[str] = mapped_column(Text)  # JSON of the latest finding
    handoff: Mapped[str] = mapped_column(Text)  # JSON of the six sections
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status_by: Mapped[str | None] = mapped_column(String(120))
    status_note: Mapped[str | None] = mapped_column(Text)
    currency: Mapped[str] = mapped_column(String(3), default="")  # "" when unknown
    # RevenueImpact.at_stake_minor, in ``currency``
    at_stake_minor: Mapped[int] = mapped_column(BigInteger, default=0)


#: The actor of what billing-ops does by itself: its timeline entries (opened, resolved,
#: notifications) and ``CaseRow.status_by`` of a case it resolved.
SYSTEM_ACTOR = "billing-ops"


class CaseEntryRow(Base):
    """The timeline of a case: every change, who made it and when."""

    __tablename__ = "case_entries"
    __table_args__ = (Index("ix_case_entries_case_at", "case_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column(Text)
    event_id: Mapped[str | None] = mapped_column(String(255))


class OutboxRow(Base):
    """A notification to deliver once: written with the case change, sent by a worker."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(400), unique=True)
    #: None for a row about billing-ops itself (an operator alert), not about a case.
    case_id: Mapped[int | None] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(16))  # slack|email|operator_alert
    reason: Mapped[str] = mapped_column(String(40))  # case_alert|duplicate_charge|recovery_email
    invoice_id: Mapped[str | None] = mapped_column(String(255), index=True)
    payload: Mapped[str] = mapped_column(Text)  # JSON; never an email address
    #: pending|sending|sent|failed|cancelled|skipped|withdrawn (``worker.notifications.outbox``)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claim_token: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ClockDueRow(Base):
    """When a person must be evaluated again with time alone (the clock's index), keyed by
    the person's smallest customer id (``object:<type>:<id>`` for an object no customer owns);
    ``evaluated_at`` is the latest instant they were evaluated at, so a late event never
    evaluates them earlier than the clock already has."""

    __tablename__ = "clock_due"

    customer_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    due_at: Mapped[int | None] = mapped_column(BigInteger, index=True)  # Unix seconds
    reason: Mapped[str | None] = mapped_column(String(40))
    subject: Mapped[str | None] = mapped_column(String(255))
    evaluated_at: Mapped[int] = mapped_column(BigInteger)  # Unix seconds
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ClockLeaseRow(Base):
    """The lease that lets one clock run at a time across every worker process and machine."""

    __tablename__ = "clock_lease"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[int] = mapped_column(BigInteger)  # Unix seconds; free once past
    runs: Mapped[int] = mapped_column(Integer, default=0)


class SyncCursorRow(Base):
    """Where a ``sync`` (one row per object kind) or ``backfill`` (kind ``events``) stands, so
    an interrupted run continues from its last committed page."""

    __tablename__ = "sync_cursors"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    since: Mapped[int] = mapped_column(BigInteger)  # the run's window start (Unix seconds)
    cursor: Mapped[str | None] = mapped_column(String(255))  # last id listed (events: created)
    listed: Mapped[bool] = mapped_column(Boolean, default=False)  # every page applied
    objects: Mapped[int] = mapped_column(Integer, default=0)  # objects applied this run
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SyncPendingRow(Base):
    """A customer a sync touched and has not evaluated yet (kept across an interruption)."""

    __tablename__ = "sync_pending"

    customer_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ActionAuditRow(Base):
    """Every step of an operator's action on a case: who, when, what, Stripe's request id, and
    how it went (``pending`` is written before the Stripe call, so a crash leaves a trace)."""

    __tablename__ = "action_audit"
    __table_args__ = (Index("ix_action_audit_case", "case_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(60))  # ActionPlan.mode
    target: Mapped[str | None] = mapped_column(String(255))
    amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(8))
    idempotency_key: Mapped[str] = mapped_column(String(255), index=True)
    result: Mapped[str] = mapped_column(String(16))  # pending|succeeded|failed
    stripe_request_id: Mapped[str | None] = mapped_column(String(255))
    detail: Mapped[str | None] = mapped_column(Text)


class OperatorRow(Base):
    """A named operator and the SHA-256 of their token (the token itself is never stored)."""

    __tablename__ = "operators"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
