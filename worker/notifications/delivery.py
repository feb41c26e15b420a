"""Deliver one outbox row: claim it, decide at send time, send, record the outcome.

The claim (one conditional UPDATE with a lease) is what makes two workers racing on a row
send it once; no transaction is held while Slack or the SMTP server is talking. Send-time
checks read the projection again: an invoice paid since the case changed cancels its email,
and a case resolved (or no longer meeting the channel's bar) by the time its notification is
due withdraws it (``worker.notifications.withdrawal``). A row claimed before it is due (a new
case's settle window) answers ``not_due`` with the time to come back.
Transient failures put the row back as pending with a backoff; permanent ones stop, and the
case timeline says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from worker import metrics
from worker.case_document import load_document
from worker.case_view import as_utc
from worker.errors import PermanentDeliveryError, TransientDeliveryError
from worker.notifications import channels as registry
from worker.notifications import operator_alerts, outbox, withdrawal
from worker.notifications.channel import Outgoing, SendContext, Settle
from worker.notifications.email import SmtpSender
from worker.notifications.slack import SlackSender
from worker.pii import scrub_text
from worker.store.db import read_session
from worker.store.tables import CaseRow

if TYPE_CHECKING:
    from worker.settings import Settings

log = structlog.get_logger()

#: Attempts (claims) of one row before it is marked failed for good.
DEFAULT_MAX_ATTEMPTS = 8
#: First retry after 30 s, doubling up to an hour: eight attempts span about two hours.
DEFAULT_MIN_BACKOFF_SECONDS = 30
DEFAULT_MAX_BACKOFF_SECONDS = 3600

SENT, FAILED, CANCELLED, SKIPPED = outbox.SENT, outbox.FAILED, outbox.CANCELLED, outbox.SKIPPED
WITHDRAWN = outbox.WITHDRAWN
RETRY, BUSY, DONE, NOT_DUE, MISSING = "retry", "busy", "done", "not_due", "missing"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long a transient failure is retried."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    min_backoff_seconds: float = DEFAULT_MIN_BACKOFF_SECONDS
    max_backoff_seconds: float = DEFAULT_MAX_BACKOFF_SECONDS
    lease_seconds: int = outbox.DEFAULT_LEASE_SECONDS

    def backoff(self, attempts: int, retry_after: float | None = None) -> timedelta:
        doubled = self.min_backoff_seconds * 2 ** max(attempts - 1, 0)
        seconds = min(doubled, self.max_backoff_seconds)
        return timedelta(seconds=max(seconds, retry_after or 0))


@dataclass(frozen=True)
class Channels:
    """Each registered channel's connection (``ChannelSpec.connect``); a channel missing here
    is off and its rows are skipped."""

    connections: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> Channels:
        return cls(
            {
                spec.name: connection
                for spec in registry.CHANNELS
                if (connection := spec.connect(settings)) is not None
            }
        )

    def connection(self, channel: str) -> Any | None:
        return self.connections.get(channel)

    @property
    def slack(self) -> SlackSender | None:
        """The Slack sender, for messages that are not case alerts (the digest)."""
        connection = self.connection(outbox.SLACK)
        return connection.sender if connection is not None else None

    @property
    def email(self) -> SmtpSender | None:
        """The SMTP sender, for emails that are not recovery emails (the digest)."""
        connection = self.connection(outbox.EMAIL)
        return connection.sender if connection is not None else None


@dataclass(frozen=True)
class DeliveryResult:
    """What one delivery attempt did; ``retry_at`` is set when the row should be tried again
    (after a transient failure, or when it is not due yet)."""

    outbox_id: int
    status: str  # sent|failed|cancelled|skipped|withdrawn|retry|busy|done|not_due|missing
    retry_at: datetime | None = None
    alerts: tuple[int, ...] = ()  # operator alerts planned because this row gave up


def deliver(
    engine: Engine,
    outbox_id: int,
    *,
    channels: Channels,
    now: datetime | None = None,
    retry: RetryPolicy | None = None,
) -> DeliveryResult:
    """Deliver outbox row ``outbox_id`` at most once; safe to call any number of times."""
    now = now or datetime.now(UTC)
    retry = retry or RetryPolicy()
    claim = outbox.claim(engine, outbox_id, now, retry.lease_seconds)
    if claim is None:
        return _unclaimed(engine, outbox_id)
    structlog.contextvars.bind_contextvars(outbox_id=claim.id, case_id=claim.case_id)
    try:
        if claim.attempts > retry.max_attempts:
            return _settle(
                engine,
                claim,
                now,
                Settle(
                    FAILED,
                    f"{_what(claim)} not sent: gave up after {retry.max_attempts} attempts",
                    "attempts exhausted",
                ),
                channels,
            )
        try:
            prepared = _prepare(engine, claim, channels)
            if isinstance(prepared, Settle):
                return _settle(engine, claim, now, prepared, channels)
            registry.BY_NAME[claim.channel].send(
                channels.connection(claim.channel), prepared.message
            )
        except PermanentDeliveryError as error:
            reason = scrub_text(str(error))
            return _settle(
                engine,
                claim,
                now,
                Settle(FAILED, f"{_what(claim)} failed permanently: {reason}", reason),
                channels,
            )
        except TransientDeliveryError as error:
            return _retry_later(engine, claim, now, retry, error, channels)
        return _settle(engine, claim, now, Settle(SENT, prepared.describe), channels)
    finally:
        structlog.contextvars.unbind_contextvars("outbox_id", "case_id")


def _unclaimed(engine: Engine, outbox_id: int) -> DeliveryResult:
    row = outbox.status_of(engine, outbox_id)
    if row is None:
        return DeliveryResult(outbox_id, MISSING)
    if row.status in outbox.FINAL_STATUSES:
        return DeliveryResult(outbox_id, DONE)
    if row.status == outbox.SENDING:
        log.info("notification_busy", outbox_id=outbox_id)
        return DeliveryResult(outbox_id, BUSY)
    # Pending but not due: a new case settling, or a retry's backoff. Come back then.
    return DeliveryResult(outbox_id, NOT_DUE, retry_at=as_utc(row.next_attempt_at))


def _settle(
    engine: Engine, claim: outbox.Claim, now: datetime, decision: Settle, channels: Channels
) -> DeliveryResult:
    """Record the outcome; a row that gave up raises one operator alert, in the same
    transaction (``worker.notifications.operator_alerts``)."""
    alerts: list[int] = []

    def alert(session: Session) -> None:
        alerts.extend(
            operator_alerts.plan_dead_notification(
                session,
                claim,
                decision.error,
                now,
                configured=channels.connection(operator_alerts.OPERATOR_ALERT) is not None,
            )
        )

    kept = outbox.finish(
        engine,
        claim,
        decision.status,
        now,
        note=decision.note,
        error=decision.error,
        also=alert if decision.status == FAILED else None,
    )
    if not kept:
        log.warning("notification_lease_lost", status=decision.status)
        return DeliveryResult(claim.id, BUSY)
    metrics.notification_settled(claim.channel, decision.status)
    log.info(
        SETTLED_EVENTS[decision.status],
        channel=claim.channel,
        reason=claim.reason,
        attempts=claim.attempts,
        error=decision.error,
    )
    return DeliveryResult(claim.id, decision.status, alerts=tuple(alerts))


def _retry_later(
    engine: Engine,
    claim: outbox.Claim,
    now: datetime,
    retry: RetryPolicy,
    error: TransientDeliveryError,
    channels: Channels,
) -> DeliveryResult:
    reason = scrub_text(str(error))
    if claim.attempts >= retry.max_attempts:
        return _settle(
            engine,
            claim,
            now,
            Settle(
                FAILED, f"{_what(claim)} failed after {claim.attempts} attempts: {reason}", reason
            ),
            channels,
        )
    retry_at = now + retry.backoff(claim.attempts, error.retry_after)
    if not outbox.finish(engine, claim, outbox.PENDING, now, error=reason, retry_at=retry_at):
        log.warning("notification_lease_lost", status=RETRY)
        return DeliveryResult(claim.id, BUSY)
    metrics.notification_retried(claim.channel)
    log.warning(
        "notification_retry_scheduled",
        channel=claim.channel,
        attempts=claim.attempts,
        retry_at=retry_at.isoformat(),
        error=reason,
    )
    return DeliveryResult(claim.id, RETRY, retry_at=retry_at)


#: The log event of each way a row is settled (literal names, one per outcome).
SETTLED_EVENTS = {
    SENT: "notification_sent",
    FAILED: "notification_failed",
    CANCELLED: "notification_cancelled",
    SKIPPED: "notification_skipped",
    WITHDRAWN: "notification_withdrawn",
}


def _what(claim: outbox.Claim) -> str:
    spec = registry.BY_NAME.get(claim.channel)
    return spec.label if spec is not None else f"{claim.channel} notification"


# --- preparing: the send-time view of the store -------------------------------------


def _prepare(engine: Engine, claim: outbox.Claim, channels: Channels) -> Outgoing | Settle:
    """The channel's send-time view of the store: what to send now, or why not."""
    spec = registry.BY_NAME.get(claim.channel)
    if spec is None:
        return Settle(FAILED, f"notification not sent: no channel {claim.channel!r}", "no channel")
    with read_session(engine) as session:
        connection = channels.connection(claim.channel)
        if claim.case_id is None:  # about billing-ops itself (an operator alert)
            return spec.prepare(SendContext(claim, None, None, session, connection))
        case = session.get(CaseRow, claim.case_id)
        if case is None:
            return Settle(CANCELLED, "notification not sent: the case is gone")
        resolved = withdrawal.for_resolved_case(case, _what(claim))
        if resolved is not None:
            return resolved
        document = load_document(case.finding, case.customer_id)
        return spec.prepare(SendContext(claim, case, document, session, connection))
