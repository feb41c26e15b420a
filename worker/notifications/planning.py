"""Which notifications a case change calls for, written to the outbox in the same transaction.

Runs inside the pipeline's write transaction (from ``worker.cases.sync_cases``): the outbox
rows commit with the case change or not at all. Each row has a dedupe key per (case, channel,
reason, invoice attempt), so a redelivered event or a replay adds nothing. With a channel not
configured the row is written ``skipped`` and the case timeline says what would have been sent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from rules.findings import SEVERITY_RANK
from worker.notifications import dunning, outbox, recovery
from worker.notifications.slack import alert_text
from worker.pii import mask_email
from worker.settings import DunningSettings
from worker.store.tables import CaseRow, OutboxRow

if TYPE_CHECKING:
    from rules import BillingSnapshot
    from worker.settings import Settings

log = structlog.get_logger()

CASE_ALERT, DUPLICATE_CHARGE, RECOVERY_EMAIL = "case_alert", "duplicate_charge", "recovery_email"
OPENED, UPDATED, REOPENED, AUTO_RESOLVED = "opened", "updated", "reopened", "auto_resolved"
#: At most one recovery email per customer in this window, whatever the cases.
EMAIL_QUIET_PERIOD = timedelta(days=1)


@dataclass(frozen=True)
class NotifyPolicy:
    """Which channels are configured, and the Slack threshold; nothing is sent by default."""

    slack: bool = False
    email: bool = False
    slack_min_severity: str = "medium"
    dunning: DunningSettings = field(default_factory=DunningSettings)

    @classmethod
    def from_settings(cls, settings: Settings) -> NotifyPolicy:
        return cls(
            slack=bool(settings.slack_webhook_url or settings.slack_bot_token),
            email=bool(settings.smtp_url and settings.email_from),
            slack_min_severity=settings.slack_min_severity,
            dunning=settings.dunning,
        )


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
    pending: list[int] = []
    for item in changes:
        if item.change == AUTO_RESOLVED:
            _cancel_for_resolved_case(session, item.case, now)
            continue
        if policy is None:
            continue
        finding = json.loads(item.case.finding)
        pending += _plan_slack(session, item, finding, now, policy)
        pending += _plan_email(session, item, finding, snapshot, now, policy)
    return tuple(pending)


def _plan_slack(
    session: Session,
    item: CaseChange,
    finding: dict[str, Any],
    now: datetime,
    policy: NotifyPolicy,
) -> list[int]:
    case = item.case
    if item.change == UPDATED:
        return []  # operators hear about new (and reopened) cases, not every change
    if finding["kind"] == "duplicate_charge":
        reason = DUPLICATE_CHARGE  # always, whatever the severity
    elif SEVERITY_RANK.get(case.severity, 0) >= SEVERITY_RANK[policy.slack_min_severity]:
        reason = CASE_ALERT
    else:
        return []
    key = f"case:{case.id}:slack:{reason}"
    if item.change == REOPENED:
        key += f":reopened:{item.event_id}"
    return _insert(
        session,
        case,
        key=key,
        channel=outbox.SLACK,
        reason=reason,
        invoice_id=None,
        payload={"event_id": item.event_id},
        configured=policy.slack,
        would_send=f"would have sent a Slack alert: {alert_text(case.id, reason, finding)}",
        now=now,
    )


def _plan_email(
    session: Session,
    item: CaseChange,
    finding: dict[str, Any],
    snapshot: BillingSnapshot,
    now: datetime,
    policy: NotifyPolicy,
) -> list[int]:
    """One email per dunning step of the invoice (``dunning``), at most one per customer a day,
    none at all when Stripe's own failed-payment emails are on."""
    if finding["kind"] not in recovery.RECOVERY_KINDS:
        return []
    facts = recovery.describe(finding, snapshot)
    if facts is None:
        log.info("recovery_email_not_planned", case_id=item.case.id, reason="no_unpaid_invoice")
        return []
    index = dunning.email_index(facts.attempt_count, policy.dunning)
    if index == 0:
        return []  # not attempted yet (e.g. an uncollectible invoice nobody tried)
    key = f"case:{item.case.id}:email:{RECOVERY_EMAIL}:{facts.invoice_id}:step{index}"
    payload = {
        "kind": facts.kind,
        "customer_id": facts.customer_id,
        "attempt_count": facts.attempt_count,
        "email_index": index,
        "next_email_attempt": dunning.next_threshold(index, policy.dunning),
        "event_id": item.event_id,
    }
    if policy.dunning.stripe_sends_emails:
        return _insert(
            session,
            item.case,
            key=key,
            channel=outbox.EMAIL,
            reason=RECOVERY_EMAIL,
            invoice_id=facts.invoice_id,
            payload=payload,
            configured=False,
            would_send=(
                f"recovery email for invoice {facts.invoice_id} left to Stripe: its own "
                "failed-payment emails are on (STRIPE_FAILED_PAYMENT_EMAILS)"
            ),
            now=now,
        )
    if _emailed_recently(session, item.case.customer_id, now):
        log.info("recovery_email_not_planned", case_id=item.case.id, reason="quiet_period")
        return []
    invoice = snapshot.invoice(facts.invoice_id)
    address = mask_email(recovery.recipient(snapshot, facts.customer_id, invoice))
    return _insert(
        session,
        item.case,
        key=key,
        channel=outbox.EMAIL,
        reason=RECOVERY_EMAIL,
        invoice_id=facts.invoice_id,
        payload=payload,
        configured=policy.email,
        would_send=(
            f"would have sent a recovery email to {address or '(no address on file)'} for "
            f"invoice {facts.invoice_id} "
            f"({facts.amount}, attempt {facts.attempt_count})"
        ),
        now=now,
    )


def _emailed_recently(session: Session, customer_id: str, now: datetime) -> bool:
    """True when this customer has a recovery email planned, sending or sent in the last day."""
    found = session.scalars(
        select(OutboxRow.id)
        .join(CaseRow, CaseRow.id == OutboxRow.case_id)
        .where(
            CaseRow.customer_id == customer_id,
            OutboxRow.channel == outbox.EMAIL,
            OutboxRow.status.in_([outbox.PENDING, outbox.SENDING, outbox.SENT]),
            OutboxRow.created_at > now - EMAIL_QUIET_PERIOD,
        )
        .limit(1)
    ).first()
    return found is not None


def _insert(
    session: Session,
    case: CaseRow,
    *,
    key: str,
    channel: str,
    reason: str,
    invoice_id: str | None,
    payload: dict[str, Any],
    configured: bool,
    would_send: str,
    now: datetime,
) -> list[int]:
    status = outbox.PENDING if configured else outbox.SKIPPED
    new_id = outbox.insert_once(
        session,
        dedupe_key=key,
        case_id=case.id,
        channel=channel,
        reason=reason,
        invoice_id=invoice_id,
        payload=payload,
        status=status,
        now=now,
    )
    if new_id is None:
        return []  # planned before: a redelivery, a replay or a repeated update
    log.info(
        "notification_planned",
        outbox_id=new_id,
        case_id=case.id,
        channel=channel,
        reason=reason,
        status=status,
    )
    if not configured:
        outbox.add_timeline(session, case.id, now, "notification_skipped", would_send)
        return []
    return [new_id]


def _cancel_for_settled_invoices(
    session: Session, snapshot: BillingSnapshot, now: datetime
) -> None:
    settled = {i.id: i for i in snapshot.invoices if recovery.is_settled(i)}
    if not settled:
        return
    rows = session.scalars(
        select(OutboxRow).where(
            OutboxRow.invoice_id.in_(list(settled)),
            OutboxRow.channel == outbox.EMAIL,
            OutboxRow.status == outbox.PENDING,
        )
    ).all()
    for row in rows:
        invoice = settled[row.invoice_id or ""]
        state = invoice.status if invoice.status in recovery.SETTLED_INVOICE_STATUSES else "settled"
        outbox.cancel_pending(
            session, [row], now, f"recovery email not sent: invoice {invoice.id} is {state}"
        )


def _cancel_for_resolved_case(session: Session, case: CaseRow, now: datetime) -> None:
    rows = session.scalars(
        select(OutboxRow).where(
            OutboxRow.case_id == case.id,
            OutboxRow.channel == outbox.EMAIL,
            OutboxRow.status == outbox.PENDING,
        )
    ).all()
    outbox.cancel_pending(
        session, rows, now, "recovery email not sent: the problem cleared before it went out"
    )
