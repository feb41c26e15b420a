"""The Slack channel: operators hear about new (and reopened) cases, duplicate charges always.

Rendering and posting live in ``worker.notifications.slack``; this module only says when an
alert is due and wires it to the ``ChannelSpec`` interface. An alert still waiting out a new
case's settle window is withdrawn when it falls due if the case dropped below the severity
threshold, or reopened meanwhile (the reopening has its own alert).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from rules.findings import SEVERITY_RANK
from worker.notifications import outbox
from worker.notifications.channel import (
    ChannelSpec,
    Outgoing,
    PlanContext,
    PlannedRow,
    SendContext,
    Settle,
)
from worker.notifications.slack import (
    BotSender,
    SlackMessage,
    SlackSender,
    WebhookSender,
    alert_text,
    render_alert,
)
from worker.notifications.withdrawal import withdrawn
from worker.settings import DEFAULT_SLACK_MIN_SEVERITY
from worker.store.tables import OutboxRow

if TYPE_CHECKING:
    from worker.settings import Settings

CASE_ALERT, DUPLICATE_CHARGE = "case_alert", "duplicate_charge"


@dataclass(frozen=True)
class SlackConnection:
    """Where alerts go, the base URL that links an alert to its case, and the severity a case
    must still have when its alert is due."""

    sender: SlackSender
    public_base_url: str | None = None
    min_severity: str = DEFAULT_SLACK_MIN_SEVERITY


def connect(settings: Settings) -> SlackConnection | None:
    """An incoming webhook, else ``chat.postMessage`` with a bot token; None when neither."""
    if settings.slack_webhook_url:
        sender: SlackSender = WebhookSender(settings.slack_webhook_url)
    elif settings.slack_bot_token and settings.slack_channel:
        sender = BotSender(
            settings.slack_bot_token, settings.slack_channel, api_base=settings.slack_api_base
        )
    else:
        return None
    return SlackConnection(sender, settings.public_base_url, settings.slack_min_severity)


def plan(ctx: PlanContext) -> list[PlannedRow]:
    """A new or reopened case at or above the threshold; every duplicate charge."""
    case, change = ctx.change.case, ctx.change
    if change.change == "updated":
        return []  # operators hear about new (and reopened) cases, not every change
    if ctx.finding.kind == "duplicate_charge":
        reason = DUPLICATE_CHARGE  # always, whatever the severity
    elif SEVERITY_RANK.get(case.severity, 0) >= SEVERITY_RANK[ctx.policy.slack_min_severity]:
        reason = CASE_ALERT
    else:
        return []
    key = f"case:{case.id}:slack:{reason}"
    if change.change == "reopened":
        key += f":reopened:{change.event_id}"
    text = alert_text(case.id, reason, ctx.finding)
    return [
        PlannedRow(
            key=key,
            reason=reason,
            payload={"event_id": change.event_id},
            would_send=f"would have sent a Slack alert: {text}",
        )
    ]


def prepare(ctx: SendContext) -> Outgoing | Settle:
    """The Block Kit alert of the case as it is now, unless it no longer calls for one."""
    case, reason = ctx.case_row, ctx.claim.reason
    connection: SlackConnection | None = ctx.connection
    if connection is None:
        text = alert_text(case.id, reason, ctx.finding)
        return Settle(outbox.SKIPPED, f"would have sent a Slack alert: {text}")
    threshold = connection.min_severity
    if reason == CASE_ALERT and SEVERITY_RANK.get(case.severity, 0) < SEVERITY_RANK[threshold]:
        return withdrawn(
            "Slack alert", f"the case is now {case.severity} severity, below {threshold}"
        )
    if _alerted_again(ctx):
        return withdrawn("Slack alert", "the case reopened meanwhile and has its own alert")
    assert ctx.document is not None  # a case row always has its document
    message = render_alert(
        case.id, reason, ctx.document, public_base_url=connection.public_base_url
    )
    return Outgoing("Slack alert posted to operators", message)


def _alerted_again(ctx: SendContext) -> bool:
    """A later alert row of the same case: it reopened while this one was waiting."""
    later = ctx.session.scalars(
        select(OutboxRow.id)
        .where(
            OutboxRow.case_id == ctx.case_row.id,
            OutboxRow.channel == outbox.SLACK,
            OutboxRow.id > ctx.claim.id,
        )
        .limit(1)
    ).first()
    return later is not None


def send(connection: SlackConnection, message: SlackMessage) -> None:
    connection.sender.post(message)


SLACK_ALERTS = ChannelSpec(
    name=outbox.SLACK,
    label="Slack alert",
    customer_facing=False,
    connect=connect,
    plan=plan,
    prepare=prepare,
    send=send,
)
