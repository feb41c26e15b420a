"""Deliver one outbox row: claim it, decide at send time, send, record the outcome.

The claim (one conditional UPDATE with a lease) is what makes two workers racing on a row
send it once; no transaction is held while Slack or the SMTP server is talking. Send-time
checks read the projection again: an invoice paid since the case changed cancels its email.
Transient failures put the row back as pending with a backoff; permanent ones stop, and the
case timeline says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import Engine

from worker import projection
from worker.errors import PermanentDeliveryError, TransientDeliveryError
from worker.notifications import email as email_channel
from worker.notifications import outbox, recovery
from worker.notifications.portal import HOSTED_INVOICE, PaymentLinks
from worker.notifications.slack import (
    BotSender,
    SlackMessage,
    SlackSender,
    WebhookSender,
    alert_text,
    render_alert,
)
from worker.pii import mask_email, scrub_text
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
    """The configured adapters; None means the channel is off and rows are skipped."""

    slack: SlackSender | None = None
    email: email_channel.SmtpSender | None = None
    email_from: str | None = None
    links: PaymentLinks = field(default_factory=PaymentLinks)
    public_base_url: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Channels:
        slack: SlackSender | None = None
        if settings.slack_webhook_url:
            slack = WebhookSender(settings.slack_webhook_url)
        elif settings.slack_bot_token and settings.slack_channel:
            slack = BotSender(
                settings.slack_bot_token, settings.slack_channel, api_base=settings.slack_api_base
            )
        sender = None
        if settings.smtp_url and settings.email_from:
            sender = email_channel.SmtpSender(email_channel.SmtpConfig.from_url(settings.smtp_url))
        return cls(
            slack=slack,
            email=sender,
            email_from=settings.email_from,
            links=PaymentLinks(
                api_key=settings.stripe_api_key,
                api_base=settings.stripe_api_base,
                return_url=settings.portal_return_url,
            ),
            public_base_url=settings.public_base_url,
        )


@dataclass(frozen=True)
class DeliveryResult:
    """What one delivery attempt did; ``retry_at`` is set when the row should be tried again."""

    outbox_id: int
    status: str  # sent|failed|cancelled|skipped|retry|busy|done|not_due|missing
    retry_at: datetime | None = None


@dataclass(frozen=True)
class _Decision:
    """Settle without sending (cancelled / skipped / failed) with a timeline note."""

    status: str
    note: str
    error: str | None = None


@dataclass(frozen=True)
class _Send:
    """Everything needed to send, prepared from the store before any network call."""

    describe: str  # for the timeline: what was sent, to whom (masked)
    slack: SlackMessage | None = None
    email: EmailMessage | None = None


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
                _Decision(
                    FAILED,
                    f"{_what(claim)} not sent: gave up after {retry.max_attempts} attempts",
                    "attempts exhausted",
                ),
            )
        try:
            prepared = _prepare(engine, claim, channels)
            if isinstance(prepared, _Decision):
                return _settle(engine, claim, now, prepared)
            _send(prepared, channels)
        except PermanentDeliveryError as error:
            reason = scrub_text(str(error))
            return _settle(
                engine,
                claim,
                now,
                _Decision(FAILED, f"{_what(claim)} failed permanently: {reason}", reason),
            )
        except TransientDeliveryError as error:
            return _retry_later(engine, claim, now, retry, error)
        return _settle(engine, claim, now, _Decision(SENT, prepared.describe))
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
    return DeliveryResult(outbox_id, NOT_DUE)


def _settle(
    engine: Engine, claim: outbox.Claim, now: datetime, decision: _Decision
) -> DeliveryResult:
    kept = outbox.finish(
        engine, claim, decision.status, now, note=decision.note, error=decision.error
    )
    if not kept:
        log.warning("notification_lease_lost", status=decision.status)
        return DeliveryResult(claim.id, BUSY)
    event = {SENT: "notification_sent", FAILED: "notification_failed"}.get(
        decision.status, f"notification_{decision.status}"
    )
    log.info(
        event,
        channel=claim.channel,
        reason=claim.reason,
        attempts=claim.attempts,
        error=decision.error,
    )
    return DeliveryResult(claim.id, decision.status)


def _retry_later(
    engine: Engine,
    claim: outbox.Claim,
    now: datetime,
    retry: RetryPolicy,
    error: TransientDeliveryError,
) -> DeliveryResult:
    reason = scrub_text(str(error))
    if claim.attempts >= retry.max_attempts:
        return _settle(
            engine,
            claim,
            now,
            _Decision(
                FAILED, f"{_what(claim)} failed after {claim.attempts} attempts: {reason}", reason
            ),
        )
    retry_at = now + retry.backoff(claim.attempts, error.retry_after)
    if not outbox.finish(engine, claim, outbox.PENDING, now, error=reason, retry_at=retry_at):
        log.warning("notification_lease_lost", status=RETRY)
        return DeliveryResult(claim.id, BUSY)
    log.warning(
        "notification_retry_scheduled",
        channel=claim.channel,
        attempts=claim.attempts,
        retry_at=retry_at.isoformat(),
        error=reason,
    )
    return DeliveryResult(claim.id, RETRY, retry_at=retry_at)


def _what(claim: outbox.Claim) -> str:
    return "Slack alert" if claim.channel == outbox.SLACK else "recovery email"


# --- preparing: the send-time view of the store -------------------------------------


def _prepare(engine: Engine, claim: outbox.Claim, channels: Channels) -> _Send | _Decision:
    with read_session(engine) as session:
        case = session.get(CaseRow, claim.case_id)
        if case is None:
            return _Decision(CANCELLED, "notification not sent: the case is gone")
        finding = _finding(case)
        if claim.channel == outbox.SLACK:
            return _prepare_slack(claim, case, finding, channels)
        person = projection.find_person(session, [case.customer_id], [])
        snapshot = projection.load_snapshot(session, person)
    return _prepare_email(claim, case, finding, snapshot, channels)


def _finding(case: CaseRow) -> dict[str, Any]:
    return json.loads(case.finding)


def _prepare_slack(
    claim: outbox.Claim, case: CaseRow, finding: dict[str, Any], channels: Channels
) -> _Send | _Decision:
    if channels.slack is None:
        text = alert_text(case.id, claim.reason, finding)
        return _Decision(SKIPPED, f"would have sent a Slack alert: {text}")
    message = render_alert(case.id, claim.reason, finding, public_base_url=channels.public_base_url)
    return _Send(describe="Slack alert posted to operators", slack=message)


def _prepare_email(
    claim: outbox.Claim,
    case: CaseRow,
    finding: dict[str, Any],
    snapshot: Any,
    channels: Channels,
) -> _Send | _Decision:
    invoice_id = claim.invoice_id or ""
    invoice = snapshot.invoice(invoice_id)
    if case.status == "resolved":
        return _Decision(CANCELLED, "recovery email not sent: the case is resolved")
    if invoice is None:
        return _Decision(
            FAILED, f"recovery email not sent: invoice {invoice_id} is unknown", "unknown invoice"
        )
    if recovery.is_settled(invoice):
        return _Decision(
            CANCELLED, f"recovery email not sent: invoice {invoice.id} is {invoice.status}"
        )
    if _superseded(invoice.attempt_count, claim.payload):
        return _Decision(
            CANCELLED,
            f"recovery email not sent: superseded by attempt "
            f"{invoice.attempt_count} of invoice {invoice.id}",
        )
    facts = recovery.describe({**finding, "subjects": [invoice.id]}, snapshot)
    address = recovery.recipient(snapshot, case.customer_id, invoice)
    masked = mask_email(address) or "(no address on file)"
    if channels.email is None or not channels.email_from:
        return _Decision(
            SKIPPED,
            f"would have sent a recovery email to {masked} for invoice "
            f"{invoice.id} (attempt {invoice.attempt_count})",
        )
    if facts is None:
        return _Decision(CANCELLED, f"recovery email not sent: invoice {invoice.id} is settled")
    if not address or not email_channel.valid_address(address):
        raise PermanentDeliveryError("the customer has no usable email address on file")
    link = channels.links.link_for(
        kind=facts.kind,
        customer_id=case.customer_id,
        hosted_invoice_url=facts.hosted_invoice_url,
        invoice_page=facts.pay_on_invoice_page,
    )
    context = {
        "first_name": facts.first_name,
        "plan": facts.plan,
        "amount": facts.amount,
        "card": f"{facts.card_brand.title()} card ending in {facts.card_last4}"
        if facts.card_brand and facts.card_last4
        else None,
        "link": link.url,
        "pay_invoice": link.source == HOSTED_INVOICE,
        "authenticate": facts.authenticate,
        "next_attempt": _day(facts.next_payment_attempt),
        "sender_name": email_channel.sender_name(channels.email_from),
    }
    rendered = email_channel.render(facts.kind, context)
    message = email_channel.build_message(
        rendered, sender=channels.email_from, to=address, dedupe_key=f"outbox:{claim.id}"
    )
    return _Send(
        describe=(
            f"recovery email sent to {masked} for invoice {invoice.id} "
            f"(attempt {invoice.attempt_count}, link: {link.source.replace('_', ' ')})"
        ),
        email=message,
    )


def _superseded(attempt_count: int, payload: dict[str, Any]) -> bool:
    """A newer dunning step of the same invoice is due: this email is out of date. Rows
    planned before the cadence existed carry only their attempt count."""
    if "email_index" in payload:
        due = payload.get("next_email_attempt")
        return due is not None and attempt_count >= int(due)
    return attempt_count > int(payload.get("attempt_count", 0))


def _day(ts: int | None) -> str | None:
    if not ts:
        return None
    day = datetime.fromtimestamp(ts, UTC)
    return f"{day:%B} {day.day}, {day.year}"


def _send(prepared: _Send, channels: Channels) -> None:
    if prepared.slack is not None:
        assert channels.slack is not None
        channels.slack.post(prepared.slack)
    if prepared.email is not None:
        assert channels.email is not None
        channels.email.send(prepared.email)
