"""Slack alerts: a message per new case above the threshold, every duplicate charge at once."""

from __future__ import annotations

import json
import re

import pytest

from tests.notifications.builders import duplicate_charge_events, failed_renewal_events
from tests.notifications.harness import (
    NOW,
    SLACK_PATH,
    deliver_all,
    make_settings,
    outbox_rows,
    run,
    timeline,
)
from worker.notifications.delivery import Channels
from worker.notifications.planning import NotifyPolicy

ADDRESS_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
CARD_RE = re.compile(r"\d(?:[ -]?\d){12,18}")


def _posted(server) -> list[dict]:
    return [json.loads(request.get_data()) for request, _ in server.log]


def test_duplicate_charge_alerts_slack_immediately(engine, channels, policy, slack):
    """A duplicate charge produces one Slack alert naming the charge to refund."""
    ids = run(engine, duplicate_charge_events(), policy)
    assert [r.reason for r in outbox_rows(engine)] == ["duplicate_charge"]
    assert [r.status for r in deliver_all(engine, ids, channels)] == ["sent"]
    [payload] = _posted(slack)
    assert payload["blocks"][0]["text"]["text"] == "Duplicate charge — case #1"
    body = payload["blocks"][1]["text"]["text"]
    assert "refund charge `ch_2`" in body and "29.00 USD" in body
    assert "<https://ops.acme.test/cases/1|case #1>" in json.dumps(payload)


def test_duplicate_charge_alerts_whatever_the_threshold(engine, channels, slack):
    """SLACK_MIN_SEVERITY=critical still lets a (high) duplicate charge through."""
    strict = NotifyPolicy(channels=frozenset({"slack", "email"}), slack_min_severity="critical")
    deliver_all(engine, run(engine, duplicate_charge_events(), strict), channels)
    assert len(slack.log) == 1


def test_case_below_the_threshold_is_not_posted(engine, channels, slack, smtp):
    """A medium failed renewal with SLACK_MIN_SEVERITY=high gets its email but no Slack post."""
    strict = NotifyPolicy(channels=frozenset({"slack", "email"}), slack_min_severity="high")
    deliver_all(engine, run(engine, failed_renewal_events(), strict), channels)
    assert slack.log == []
    assert len(smtp.inbox.messages) == 1


def test_posted_json_has_no_email_address_and_no_card_number(engine, channels, policy, slack):
    """The Slack JSON carries no email address and no card number, even one smuggled in a name."""
    events = duplicate_charge_events(name="4242424242424242 Stone", email="bob.stone@example.com")
    deliver_all(engine, run(engine, events, policy), channels)
    [request] = [r for r, _ in slack.log]
    raw = request.get_data(as_text=True)
    assert ADDRESS_RE.search(raw) is None
    assert CARD_RE.search(raw) is None
    assert "bob.stone" not in raw and "sk_" not in raw
    assert "b***@example.com" in raw  # masked, enough for an operator to recognise


def test_slack_500_is_retried_then_posted_once(engine, channels, policy, slack):
    """A Slack 500 puts the alert back with a backoff; the retry posts it, once."""
    slack.clear_all_handlers()
    slack.expect_oneshot_request(SLACK_PATH).respond_with_data("internal_error", status=500)
    slack.expect_request(SLACK_PATH).respond_with_data("ok")
    [outbox_id] = run(engine, duplicate_charge_events(), policy)
    [first] = deliver_all(engine, [outbox_id], channels)
    assert first.status == "retry" and first.retry_at is not None
    assert deliver_all(engine, [outbox_id], channels, now=first.retry_at)[0].status == "sent"
    assert deliver_all(engine, [outbox_id], channels, now=first.retry_at)[0].status == "done"
    assert [response.status_code for _, response in slack.log] == [500, 200]


@pytest.mark.parametrize(
    ("status", "body"), [(404, "no_service"), (403, "invalid_token"), (410, "channel_is_archived")]
)
def test_revoked_webhook_fails_without_retry(engine, channels, policy, slack, status, body):
    """A revoked hook (403/404/410, invalid_token/no_service) is permanent: one try, on the case."""
    slack.clear_all_handlers()
    slack.expect_oneshot_request(SLACK_PATH).respond_with_data(body, status=status)
    slack.expect_request(SLACK_PATH).respond_with_data("ok")
    [outbox_id] = run(engine, duplicate_charge_events(), policy)
    assert deliver_all(engine, [outbox_id], channels)[0].status == "failed"
    assert deliver_all(engine, [outbox_id], channels, now=NOW.replace(hour=23))[0].status == "done"
    assert len(slack.log) == 1
    [(_, note)] = [e for e in timeline(engine) if e[0] == "notification_failed"]
    assert f"{status} {body}" in note


def test_bot_token_posts_with_chat_post_message(engine, tmp_path, policy, httpserver):
    """SLACK_BOT_TOKEN + SLACK_CHANNEL post through the Web API (SLACK_API_BASE for tests)."""
    httpserver.expect_request("/api/chat.postMessage", method="POST").respond_with_json(
        {"ok": True, "channel": "C0BILLING", "ts": "1769817600.000100"}
    )
    settings = make_settings(
        tmp_path,
        slack_bot_token="xoxb-test-token",
        slack_channel="#billing-ops",
        slack_api_base=httpserver.url_for("/api/"),
    )
    ids = run(engine, duplicate_charge_events(), policy)
    assert [r.status for r in deliver_all(engine, ids, Channels.from_settings(settings))] == [
        "sent"
    ]
    [(request, _)] = httpserver.log
    sent = request.get_json(silent=True) or request.form.to_dict()
    assert sent["channel"] == "#billing-ops"
    assert request.headers["Authorization"] == "Bearer xoxb-test-token"
