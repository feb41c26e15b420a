"""A new notification channel is one ChannelSpec plus its registration: nothing else changes."""

from __future__ import annotations

import json
import urllib.request

import pytest
from pytest_httpserver import HTTPServer

from tests.notifications.builders import failed_renewal_events
from tests.notifications.harness import deliver_all, outbox_rows, run, timeline
from worker.notifications import channels as registry
from worker.notifications.channel import (
    ChannelSpec,
    Outgoing,
    PlanContext,
    PlannedRow,
    SendContext,
    Settle,
)
from worker.notifications.delivery import Channels
from worker.notifications.planning import NotifyPolicy

HOOK_PATH = "/hooks/cases"


def webhook_channel(url: str) -> ChannelSpec:
    """A generic JSON webhook: one POST per new case, as a third party would add it."""

    def plan(ctx: PlanContext) -> list[PlannedRow]:
        if ctx.change.change != "opened":
            return []
        key = f"case:{ctx.change.case.id}:webhook:opened"
        return [PlannedRow(key, "case_opened", {}, "would have posted the case to the webhook")]

    def prepare(ctx: SendContext) -> Outgoing | Settle:
        body = {"case": ctx.case.id, "kind": ctx.finding.kind}
        return Outgoing(f"case posted to the webhook ({ctx.finding.kind})", body)

    def send(connection: str, message: dict[str, object]) -> None:
        request = urllib.request.Request(
            connection, data=json.dumps(message).encode(), method="POST"
        )
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=5):
            pass

    return ChannelSpec("webhook", "webhook post", False, lambda _settings: url, plan, prepare, send)


@pytest.fixture
def with_webhook(monkeypatch: pytest.MonkeyPatch, httpserver: HTTPServer) -> ChannelSpec:
    httpserver.expect_request(HOOK_PATH, method="POST").respond_with_data("ok")
    spec = webhook_channel(httpserver.url_for(HOOK_PATH))
    monkeypatch.setattr(registry, "CHANNELS", (*registry.CHANNELS, spec))
    monkeypatch.setattr(registry, "BY_NAME", {**registry.BY_NAME, spec.name: spec})
    return spec


def test_a_registered_channel_is_planned_and_delivered(
    engine, configured, with_webhook, httpserver
):
    """Registering a ChannelSpec is enough: its rows are planned, delivered and on the timeline."""
    policy = NotifyPolicy.from_settings(configured)
    assert policy.configured("webhook")
    deliver_all(
        engine, run(engine, failed_renewal_events(), policy), Channels.from_settings(configured)
    )
    [request] = [r for r, _ in httpserver.log if r.path == HOOK_PATH]
    assert json.loads(request.get_data()) == {"case": 1, "kind": "failed_renewal"}
    [row] = [r for r in outbox_rows(engine) if r.channel == "webhook"]
    assert row.status == "sent"
    assert ("notification_sent", "case posted to the webhook (failed_renewal)") in timeline(engine)
