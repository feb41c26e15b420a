"""Operator alerts: billing-ops itself failed — an event that failed for good, a notification
that gave up — said once per failure, in Slack when it is configured.

These rows are about no customer's case (their ``case_id`` is empty): the failure plans its
own row, inside the transaction that records it (``plan_event_failed``,
``plan_dead_notification``), instead of a case change (``plan`` returns nothing). From there
they are outbox rows like any other: claimed once, retried with backoff, listed by
``billing-ops outbox list``. A row of this channel that gives up raises no further alert, and
every alert is also one ``operator_alert`` error line in the log, configured or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy.orm import Session

from worker.notifications import outbox
from worker.notifications.channel import (
    ChannelSpec,
    Outgoing,
    PlanContext,
    PlannedRow,
    SendContext,
    Settle,
)
from worker.notifications.slack import SlackMessage, slack_escape
from worker.notifications.slack_alerts import SlackConnection
from worker.notifications.slack_alerts import connect as connect_slack
from worker.pii import scrub_text
from worker.templating import template_env

if TYPE_CHECKING:
    from worker.notifications.outbox import Claim
    from worker.store.tables import EventRow

log = structlog.get_logger()

#: The outbox channel of these rows.
OPERATOR_ALERT = "operator_alert"
#: Why an alert was raised (the row's ``reason``).
EVENT_FAILED, NOTIFICATION_DEAD = "event_failed", "notification_dead"
#: Characters of an error kept in an alert.
ERROR_CHARS = 300


def _escaped(value: Any) -> Any:
    """Template ``finalize``: every printed value with Slack's control characters escaped."""
    if value is None:
        return ""
    return slack_escape(value) if isinstance(value, str) else value


_env = template_env("slack", finalize=_escaped)


@dataclass(frozen=True)
class Alert:
    """What an operator is told: a reason and the facts, no payload, no address."""

    reason: str
    facts: dict[str, Any]

    def text(self) -> str:
        """One line: the log's ``summary``, Slack's fallback text, the "would have sent" note."""
        f = self.facts
        if self.reason == EVENT_FAILED:
            line = (
                f"Event {f['event_id']} ({f['event_type']}) failed after {f['attempts']} "
                f"attempt(s): {f['error']}"
            )
        else:
            case = f" of case #{f['case_id']}" if f.get("case_id") is not None else ""
            line = (
                f"Notification #{f['outbox_id']} ({f['channel']} {f['kind']}){case} gave up "
                f"after {f['attempts']} attempt(s): {f['error']}"
            )
        return scrub_text(line)


def plan_event_failed(
    session: Session, row: EventRow, now: datetime, *, configured: bool
) -> tuple[int, ...]:
    """The alert for ``row``, which has just failed for good (in the transaction that says so);
    the new pending row's id, to enqueue once committed."""
    alert = Alert(
        EVENT_FAILED,
        {
            "event_id": row.id,
            "event_type": row.type,
            "attempts": row.attempts,
            "error": _short(row.last_error),
        },
    )
    key = f"{OPERATOR_ALERT}:{EVENT_FAILED}:{row.id}:{row.attempts}"
    return _insert(session, key, alert, now, configured=configured)


def plan_dead_notification(
    session: Session, claim: Claim, error: str | None, now: datetime, *, configured: bool
) -> tuple[int, ...]:
    """The alert for a notification that has just given up (in the transaction that says so);
    none for an operator alert itself, which would only repeat the broken channel."""
    if claim.channel == OPERATOR_ALERT:
        return ()
    alert = Alert(
        NOTIFICATION_DEAD,
        {
            "outbox_id": claim.id,
            "case_id": claim.case_id,
            "channel": claim.channel,
            "kind": claim.reason,
            "attempts": claim.attempts,
            "error": _short(error),
        },
    )
    key = f"{OPERATOR_ALERT}:{NOTIFICATION_DEAD}:{claim.id}:{now.isoformat()}"
    return _insert(session, key, alert, now, configured=configured)


def _short(error: str | None) -> str:
    text = " ".join((error or "unknown error").split())
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


def _insert(
    session: Session, key: str, alert: Alert, now: datetime, *, configured: bool
) -> tuple[int, ...]:
    status = outbox.PENDING if configured else outbox.SKIPPED
    new_id = outbox.insert_once(
        session,
        dedupe_key=key,
        case_id=None,
        channel=OPERATOR_ALERT,
        reason=alert.reason,
        invoice_id=None,
        payload={"reason": alert.reason, **alert.facts},
        status=status,
        now=now,
    )
    if new_id is None:
        return ()  # this very failure was alerted already
    log.error("operator_alert", reason=alert.reason, outbox_id=new_id, summary=alert.text(),
              status=status)  # fmt: skip
    return (new_id,) if configured else ()


def _alert_of(claim: Claim) -> Alert:
    facts = dict(claim.payload)
    return Alert(str(facts.pop("reason", claim.reason)), facts)


def connect(settings: Any) -> SlackConnection | None:
    """Where operators hear about cases is where they hear about billing-ops: Slack."""
    return connect_slack(settings)


def plan(ctx: PlanContext) -> list[PlannedRow]:
    """A case change never calls for an operator alert: failures plan their own rows."""
    return []


def prepare(ctx: SendContext) -> Outgoing | Settle:
    alert = _alert_of(ctx.claim)
    connection: SlackConnection | None = ctx.connection
    if connection is None:
        return Settle(outbox.SKIPPED, f"would have sent an operator alert: {alert.text()}")
    return Outgoing("operator alert posted", render(alert, connection.public_base_url))


def render(alert: Alert, public_base_url: str | None) -> SlackMessage:
    """The Block Kit message: what failed, why, and the command that retries it."""
    title = "Event failed" if alert.reason == EVENT_FAILED else "Notification gave up"
    body = scrub_text(
        _env.get_template("operator_alert.md.j2")
        .render(reason=alert.reason, public_base_url=public_base_url, **alert.facts)
        .strip()
    )
    return SlackMessage(
        text=slack_escape(alert.text()),
        blocks=(
            {"type": "header", "text": {"type": "plain_text", "text": f"billing-ops: {title}"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": body[:3000]}},
        ),
    )


def send(connection: SlackConnection, message: SlackMessage) -> None:
    connection.sender.post(message)


OPERATOR_ALERTS = ChannelSpec(
    name=OPERATOR_ALERT,
    label="operator alert",
    customer_facing=False,
    connect=connect,
    plan=plan,
    prepare=prepare,
    send=send,
)
