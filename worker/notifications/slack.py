"""Slack alerts for operators: Block Kit built from a case, posted by webhook or bot token.

A message says what an operator needs to act (kind, classification, masked customer, money
at stake, recommended action, case id) and nothing that must not leave billing-ops: no email
address, no card data, no secret. Every text goes through ``worker.pii.scrub_text`` last.

Every value printed into a message is escaped first (``slack_escape``): Slack parses ``&``,
``<`` and ``>`` as control characters in every text object, so an id or a name carrying
``<!channel>`` or ``<https://evil.example|x>`` would otherwise ping a channel or show a link
(https://api.slack.com/reference/surfaces/formatting, "Escaping text").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from rules.findings import Finding, RevenueImpact
from rules.formatting import format_money
from worker.case_document import CaseDocument
from worker.errors import PermanentDeliveryError, TransientDeliveryError
from worker.pii import mask_email, scrub_text
from worker.templating import template_env
from worker.urls import case_page_url

#: Seconds before a Slack request is abandoned (and retried later).
DEFAULT_TIMEOUT_SECONDS = 10
#: Webhook statuses that mean the hook is gone: retrying cannot help.
PERMANENT_STATUSES = frozenset({400, 403, 404, 410})
#: Error strings Slack answers when a hook or token was revoked or a channel is gone.
PERMANENT_ERRORS = frozenset(
    {
        "invalid_token",
        "no_service",
        "no_service_id",
        "no_team",
        "team_disabled",
        "channel_not_found",
        "channel_is_archived",
        "is_archived",
        "not_in_channel",
        "action_prohibited",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "invalid_payload",
        "invalid_blocks",
        "msg_too_long",
    }
)
KIND_LABELS = {
    "duplicate_subscription": "Duplicate subscription",
    "duplicate_charge": "Duplicate charge",
    "failed_renewal": "Failed renewal",
    "incomplete_checkout": "Incomplete checkout",
    "churn_signal": "Churn signal",
    "dispute": "Dispute",
}


def slack_escape(text: str) -> str:
    """Slack's three control characters as the entities Slack documents (``&`` first)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_escape(value: Any) -> Any:
    """Template ``finalize``: every value a template prints is escaped."""
    if value is None:
        return ""
    if isinstance(value, str):
        return slack_escape(value)
    return value


_env = template_env("slack", finalize=_slack_escape)


@dataclass(frozen=True)
class SlackMessage:
    """What is posted: a plain fallback text and the Block Kit blocks."""

    text: str
    blocks: tuple[dict[str, Any], ...]

    def as_json(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": list(self.blocks)}


class SlackSender(Protocol):
    def post(self, message: SlackMessage) -> None: ...


def _label(value: str | None) -> str:
    return (value or "unknown").replace("_", " ")


def masked_customer(document: CaseDocument) -> str:
    """``Jane D. · j***@example.com · cus_123``: recognisable for an operator, no address."""
    view = document.customer
    parts = []
    name = (view.name or "").split()
    if name:
        parts.append(" ".join([name[0], *(f"{n[0]}." for n in name[1:2])]))
    if view.email_masked:
        parts.append(mask_email(view.email_masked) or "")
    parts.append(document.finding.customer_id or view.id or "unknown customer")
    return " · ".join(parts)


def alert_text(case_id: int, reason: str, finding: Finding) -> str:
    """The one-line summary: the "would have sent" note (the fallback text escapes it)."""
    impact = finding.revenue_impact
    at_stake = format_money(impact.amount_minor, impact.currency)
    kind = KIND_LABELS.get(finding.kind, _label(finding.kind))
    prefix = "Duplicate charge alert" if reason == "duplicate_charge" else f"New case: {kind}"
    return scrub_text(
        f"{prefix} — case #{case_id}, {finding.severity}, {at_stake} at stake, "
        f"recommended {_label(finding.recommended_action.type)}"
    )


def _mrr_at_risk(impact: RevenueImpact) -> str | None:
    """MRR at risk as text: "unknown" when the rules could not know it (metered or tiered
    prices, a discount without its terms), None when there is none."""
    if impact.mrr_at_risk_minor is None:
        return "unknown"
    value = impact.mrr_at_risk_minor
    return format_money(value, impact.currency) if value else None


def render_alert(
    case_id: int, reason: str, document: CaseDocument, *, public_base_url: str | None
) -> SlackMessage:
    """The Block Kit message for a new case (or a duplicate charge) from its finding."""
    finding = document.finding
    impact = finding.revenue_impact
    action = finding.recommended_action
    kind = KIND_LABELS.get(finding.kind, _label(finding.kind))
    context = {
        "kind": kind,
        "classification": _label(finding.classification),
        "severity": finding.severity,
        "customer": masked_customer(document),
        "plan": document.plan_name,
        "at_stake": format_money(impact.amount_minor, impact.currency),
        "mrr_at_risk": _mrr_at_risk(impact),
        "action": _label(action.type),
        "target": action.target,
        "reversible": action.reversible,
        "steps": list(action.steps)[:3],
    }
    template = "duplicate_charge.md.j2" if reason == "duplicate_charge" else "case_alert.md.j2"
    body = scrub_text(_env.get_template(template).render(**context).strip())
    title = slack_escape(
        f"Duplicate charge — case #{case_id}"
        if reason == "duplicate_charge"
        else (f"{kind} — case #{case_id}")
    )
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": body[:3000]}},
    ]
    key = slack_escape(scrub_text(finding.key))
    footer = f"case #{case_id} · {key}"
    if public_base_url:
        url = case_page_url(public_base_url, case_id)
        footer = f"<{url}|case #{case_id}> · {key}"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": footer}]})
    text = slack_escape(alert_text(case_id, reason, finding))
    return SlackMessage(text=text, blocks=tuple(blocks))


def plain_message(text: str) -> SlackMessage:
    """A pre-formatted text (the digest) as one code block."""
    body = slack_escape(scrub_text(text))
    return SlackMessage(
        text=body.splitlines()[0] if body else "billing-ops",
        blocks=({"type": "section", "text": {"type": "mrkdwn", "text": f"```{body[:2900]}```"}},),
    )


class WebhookSender:
    """An incoming webhook: HTTP status and body say whether the hook still exists."""

    def __init__(self, url: str, *, timeout: int = DEFAULT_TIMEOUT_SECONDS) -> None:
        self._client = WebhookClient(url, timeout=timeout, retry_handlers=[])

    def post(self, message: SlackMessage) -> None:
        try:
            response = self._client.send(text=message.text, blocks=list(message.blocks))
        except OSError as error:  # refused, reset, timed out, DNS
            raise TransientDeliveryError(f"slack webhook unreachable: {error}") from error
        body = (response.body or "").strip()
        if 200 <= response.status_code < 300:
            return
        if response.status_code in PERMANENT_STATUSES or body in PERMANENT_ERRORS:
            raise PermanentDeliveryError(f"slack webhook refused: {response.status_code} {body}")
        retry_after = _retry_after(response.headers) if response.status_code == 429 else None
        raise TransientDeliveryError(
            f"slack webhook answered {response.status_code} {body[:200]}", retry_after=retry_after
        )


class BotSender:
    """``chat.postMessage`` with a bot token; ``api_base`` points tests at a local server."""

    def __init__(
        self,
        token: str,
        channel: str,
        *,
        api_base: str | None = None,
        timeout: int = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        base = (api_base.rstrip("/") + "/") if api_base else WebClient.BASE_URL
        self._client = WebClient(token=token, base_url=base, timeout=timeout, retry_handlers=[])
        self._channel = channel

    def post(self, message: SlackMessage) -> None:
        try:
            self._client.chat_postMessage(
                channel=self._channel, text=message.text, blocks=list(message.blocks)
            )
        except SlackApiError as error:
            status = error.response.status_code
            code = str(error.response.get("error") or "")
            if code in PERMANENT_ERRORS or status in PERMANENT_STATUSES:
                raise PermanentDeliveryError(f"slack api refused: {status} {code}") from error
            retry_after = _retry_after(error.response.headers) if status == 429 else None
            raise TransientDeliveryError(
                f"slack api answered {status} {code}", retry_after=retry_after
            ) from error
        except OSError as error:
            raise TransientDeliveryError(f"slack api unreachable: {error}") from error


def _retry_after(headers: Any) -> float | None:
    """Seconds Slack asked us to wait on a 429, when it said."""
    for key in ("Retry-After", "retry-after"):
        value = (headers or {}).get(key)
        if isinstance(value, list):
            value = value[0] if value else None
        if value is None:
            continue
        try:
            return float(value)
        except ValueError:
            return None
    return None
