"""Which notifications a case change calls for, written to the outbox in the same transaction.

Runs inside the pipeline's write transaction (from ``worker.cases.sync_cases``): the outbox
rows commit with the case change or not at all. Each registered channel
(``worker.notifications.channels``) plans its own rows; each row has a dedupe key, so a
redelivered event or a replay adds nothing. With a channel not configured the row is written
``skipped`` and the case timeline says what would have been sent. Customer-facing rows still
pending are cancelled when their invoice is paid or void, or their case resolves itself.

The rows of a new (or reopened) case are due ``settle_seconds`` later, not at once: Stripe
does not deliver events in order (https://docs.stripe.com/webhooks#event-ordering), and an
event still on its way can clear the finding that opened the case (two equal charges read as
a duplicate until the invoices each paid arrive). Delivery then withdraws what the case no
longer calls for (``worker.notifications.delivery``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from worker.case_document import CaseDocument, load_document
from worker.notifications import channels as registry
from worker.notifications import outbox, recovery
from worker.notifications.channel import ChannelSpec, PlanContext, PlannedRow
from worker.settings import DunningSettings
from worker.store.tables import CaseRow, OutboxRow

if TYPE_CHECKING:
    from rules import BillingSnapshot
    from worker.settings import Settings

log = structlog.get_logger()

OPENED, UPDATED, REOPENED, AUTO_RESOLVED = "opened", "updated", "reopened", "auto_resolved"


def _customer_facing() -> list[str]:
    return [spec.name for spec in registry.CHANNELS if spec.customer_facing]


@dataclass(frozen=True)
class NotifyPolicy:
    """Which channels are configured, and their plan-time settings; nothing is sent by default."""

    channels: frozenset[str] = frozenset()
    slack_min_severity: str = "medium"
    dunning: DunningSettings = field(default_factory=DunningSettings)
    #: A new (or reopened) case's rows are due this many seconds after it (0: at once).
    settle_seconds: int = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> NotifyPolicy:
        return cls(
            channels=frozenset(
                s.name for s in registry.CHANNELS if s.connect(settings) is not None
            ),
            slack_min_severity=settings.slack_min_severity,
            dunning=settings.dunning,
            settle_seconds=settings.alert_settle_seconds,
        )

    def due_at(self, change: str, now: datetime) -> datetime:
        """When a row planned for this case change may go: a new or reopened case waits for
        the events still on their way; later changes (a dunning step) go at once."""
        if change in (OPENED, REOPENED):
            return now + timedelta(seconds=self.settle_seconds)
        return now

    def configured(self, channel: str) -> bool:
        return channel in self.channels


@dataclass(frozen=True)
class CaseChange:
    """One case the pipeline just opened, updated, reopened or auto-resolved."""

    case: CaseRow
    change: str
    event_id: str | None


def plan_notifications(
    session: Session,
    changes: Sequence[CaseChange],
    snapshot: BillingSnapshot,
    now: datetime,
    policy: NotifyPolicy | None = None,
) -> tuple[int, ...]:
    """Write the outbox rows these changes call for; return the ids of new pending rows.

    Without a ``policy`` (the pipeline run outside a worker: an in-process replay, a test)
    nothing new is planned, but pending emails whose invoice got paid are still cancelled.
    """
    _cancel_for_settled_invoices(session, snapshot, now)
    # Cancel first, plan after: a case that replaces a resolved one (the subscription's
    # past_due case giving way to its invoice's) must not be kept quiet by the email the
    # resolved case no longer sends.
    for item in changes:
        if item.change == AUTO_RESOLVED:
            _cancel_for_resolved_case(session, item.case, now)
    pending: list[int] = []
    for item in changes:
        if item.change == AUTO_RESOLVED or policy is None:
            continue
        document = load_document(item.case.finding, item.case.customer_id)
        for spec in registry.CHANNELS:
            pending += _plan(session, spec, item, document, snapshot, now, policy)
    return tuple(pending)


def _plan(
    session: Session,
    spec: ChannelSpec,
    item: CaseChange,
    document: CaseDocument,
    snapshot: BillingSnapshot,
    now: datetime,
    policy: NotifyPolicy,
) -> list[int]:
    context = PlanContext(session, item, document, snapshot, now, policy)
    pending: list[int] = []
    for row in spec.plan(context):
        pending += _insert(session, item, spec, row, policy, now)
    return pending


def _insert(
    session: Session,
    item: CaseChange,
    spec: ChannelSpec,
    row: PlannedRow,
    policy: NotifyPolicy,
    now: datetime,
) -> list[int]:
    case = item.case
    configured = policy.configured(spec.name) if row.configured is None else row.configured
    status = outbox.PENDING if configured else outbox.SKIPPED
    due_at = policy.due_at(item.change, now)
    new_id = outbox.insert_once(
        session,
        dedupe_key=row.key,
        case_id=case.id,
        channel=spec.name,
        reason=row.reason,
        invoice_id=row.invoice_id,
        payload=row.payload,
        status=status,
        now=now,
        due_at=due_at,
    )
    if new_id is None:
        return []  # planned before: a redelivery, a replay or a repeated update
    log.info(
        "notification_planned",
        outbox_id=new_id,
        case_id=case.id,
        channel=spec.name,
        reason=row.reason,
        status=status,
        due_at=due_at.isoformat(),
    )
    if not configured:
        outbox.add_timeline(session, case.id, now, "notification_skipped", row.would_send)
        return []
    return [new_id]


#: Pending customer-facing notifications about any of some invoices, built once: asked on
#: every evaluation of a person with a settled invoice.
_PENDING_FOR_INVOICES = select(OutboxRow).where(
    OutboxRow.invoice_id.in_(bindparam("invoices", expanding=True)),
    OutboxRow.channel.in_(bindparam("channels", expanding=True)),
    OutboxRow.status == outbox.PENDING,
)


def _cancel_for_settled_invoices(
    session: Session, snapshot: BillingSnapshot, now: datetime
) -> None:
    settled = {i.id: i for i in snapshot.invoices if recovery.is_settled(i)}
    if not settled:
        return
    params = {"invoices": sorted(settled), "channels": _customer_facing()}
    for row in session.scalars(_PENDING_FOR_INVOICES, params).all():
        invoice = settled[row.invoice_id or ""]
        state = invoice.status if invoice.status in recovery.SETTLED_INVOICE_STATUSES else "settled"
        outbox.cancel_pending(
            session, [row], now, f"recovery email not sent: invoice {invoice.id} is {state}"
        )


def _cancel_for_resolved_case(session: Session, case: CaseRow, now: datetime) -> None:
    rows = session.scalars(
        select(OutboxRow).where(
            OutboxRow.case_id == case.id,
            OutboxRow.channel.in_(_customer_facing()),
            OutboxRow.status == outbox.PENDING,
        )
    ).all()
    outbox.cancel_pending(
        session, rows, now, "recovery email not sent: the problem cleared before it went out"
    )
