"""The recovery-email channel: the customer hears about a failed renewal, on a cadence.

When a failed-renewal case changes, one email per dunning step of the invoice
(``worker.notifications.dunning``), never more than one per customer a day, none when Stripe's
own failed-payment emails are on. At send time the invoice is read again: paid or void cancels
the email, a newer dunning step supersedes it; a resolved case withdraws it (delivery checks
that before ``prepare``). The facts come from
``worker.notifications.recovery``, the link from ``portal``, the words from the templates.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import select

from worker import projection
from worker.errors import PermanentDeliveryError
from worker.notifications import dunning, outbox, recovery
from worker.notifications import email as smtp
from worker.notifications.channel import (
    ChannelSpec,
    Outgoing,
    PlanContext,
    PlannedRow,
    SendContext,
    Settle,
)
from worker.notifications.portal import HOSTED_INVOICE, PaymentLinks
from worker.pii import mask_email
from worker.store.tables import CaseRow, OutboxRow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from worker.settings import Settings

log = structlog.get_logger()

RECOVERY_EMAIL = "recovery_email"
#: At most one recovery email per customer in this window, whatever the cases.
EMAIL_QUIET_PERIOD = timedelta(days=1)


@dataclass(frozen=True)
class EmailConnection:
    """The SMTP server, the sender, and how the payment link is made."""

    sender: smtp.SmtpSender
    email_from: str
    links: PaymentLinks = field(default_factory=PaymentLinks)


def connect(settings: Settings) -> EmailConnection | None:
    """SMTP_URL and EMAIL_FROM both set, else None (the settings refuse one without the other)."""
    if not (settings.smtp_url and settings.email_from):
        return None
    return EmailConnection(
        smtp.SmtpSender(smtp.SmtpConfig.from_url(settings.smtp_url)),
        settings.email_from,
        PaymentLinks(
            api_key=settings.stripe_api_key,
            api_base=settings.stripe_api_base,
            return_url=settings.portal_return_url,
        ),
    )


def plan(ctx: PlanContext) -> list[PlannedRow]:
    """One row per dunning step of the case's unpaid invoice."""
    case, policy = ctx.change.case, ctx.policy
    if ctx.finding.kind not in recovery.RECOVERY_KINDS:
        return []
    facts = recovery.describe(ctx.finding, ctx.snapshot)
    if facts is None:
        log.info("recovery_email_not_planned", case_id=case.id, reason="no_unpaid_invoice")
        return []
    index = dunning.email_index(facts.attempt_count, policy.dunning)
    if index == 0:
        return []  # not attempted yet (e.g. an uncollectible invoice nobody tried)
    key = f"case:{case.id}:email:{RECOVERY_EMAIL}:{facts.invoice_id}:step{index}"
    payload = {
        "kind": facts.kind,
        "customer_id": facts.customer_id,
        "attempt_count": facts.attempt_count,
        "email_index": index,
        "next_email_attempt": dunning.next_threshold(index, policy.dunning),
        "event_id": ctx.change.event_id,
    }
    if policy.dunning.stripe_sends_emails:
        note = (
            f"recovery email for invoice {facts.invoice_id} left to Stripe: its own "
            "failed-payment emails are on (STRIPE_FAILED_PAYMENT_EMAILS)"
        )
        return [PlannedRow(key, RECOVERY_EMAIL, payload, note, facts.invoice_id, False)]
    if _emailed_recently(ctx.session, case.customer_id, ctx.now):
        log.info("recovery_email_not_planned", case_id=case.id, reason="quiet_period")
        return []
    invoice = ctx.snapshot.invoice(facts.invoice_id)
    address = mask_email(recovery.recipient(ctx.snapshot, facts.customer_id, invoice))
    would_send = (
        f"would have sent a recovery email to {address or '(no address on file)'} for "
        f"invoice {facts.invoice_id} ({facts.amount}, attempt {facts.attempt_count})"
    )
    return [PlannedRow(key, RECOVERY_EMAIL, payload, would_send, facts.invoice_id)]


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


def prepare(ctx: SendContext) -> Outgoing | Settle:
    """The email for the invoice as it is now, or why it should not go."""
    claim, case = ctx.claim, ctx.case_row
    person = projection.find_person(ctx.session, [case.customer_id], [])
    snapshot = projection.load_snapshot(ctx.session, person)
    invoice_id = claim.invoice_id or ""
    invoice = snapshot.invoice(invoice_id)
    if invoice is None:
        return Settle(
            outbox.FAILED,
            f"recovery email not sent: invoice {invoice_id} is unknown",
            "unknown invoice",
        )
    if recovery.is_settled(invoice):
        return Settle(
            outbox.CANCELLED, f"recovery email not sent: invoice {invoice.id} is {invoice.status}"
        )
    if _superseded(invoice.attempt_count, claim.payload):
        return Settle(
            outbox.CANCELLED,
            f"recovery email not sent: superseded by attempt "
            f"{invoice.attempt_count} of invoice {invoice.id}",
        )
    facts = recovery.describe(replace(ctx.finding, subjects=(invoice.id,)), snapshot)
    address = recovery.recipient(snapshot, case.customer_id, invoice)
    masked = mask_email(address) or "(no address on file)"
    connection: EmailConnection | None = ctx.connection
    if connection is None:
        return Settle(
            outbox.SKIPPED,
            f"would have sent a recovery email to {masked} for invoice "
            f"{invoice.id} (attempt {invoice.attempt_count})",
        )
    if facts is None:
        return Settle(outbox.CANCELLED, f"recovery email not sent: invoice {invoice.id} is settled")
    if not address or not smtp.valid_address(address):
        raise PermanentDeliveryError("the customer has no usable email address on file")
    link = connection.links.link_for(
        kind=facts.kind,
        customer_id=case.customer_id,
        hosted_invoice_url=facts.hosted_invoice_url,
        invoice_page=facts.pay_on_invoice_page,
    )
    context: dict[str, Any] = {
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
        "sender_name": smtp.sender_name(connection.email_from),
    }
    message = smtp.build_message(
        smtp.render(facts.kind, context),
        sender=connection.email_from,
        to=address,
        dedupe_key=f"outbox:{claim.id}",
    )
    return Outgoing(
        f"recovery email sent to {masked} for invoice {invoice.id} "
        f"(attempt {invoice.attempt_count}, link: {link.source.replace('_', ' ')})",
        message,
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


def send(connection: EmailConnection, message: EmailMessage) -> None:
    connection.sender.send(message)


RECOVERY_EMAILS = ChannelSpec(
    name=outbox.EMAIL,
    label="recovery email",
    customer_facing=True,
    connect=connect,
    plan=plan,
    prepare=prepare,
    send=send,
)
