"""Real receivers for notifications: an in-process SMTP server and a local Slack endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from tests.notifications.harness import SLACK_PATH, SmtpServer, make_settings
from worker.notifications.delivery import Channels
from worker.notifications.planning import NotifyPolicy
from worker.settings import Settings


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def slack(httpserver: HTTPServer) -> HTTPServer:
    """The Slack incoming-webhook endpoint, answering ``ok`` unless a test says otherwise."""
    httpserver.expect_request(SLACK_PATH, method="POST").respond_with_data("ok")
    return httpserver


@pytest.fixture
def configured(tmp_path: Path, smtp: SmtpServer, slack: HTTPServer) -> Settings:
    """Slack webhook and SMTP both configured, pointing at the local receivers."""
    return make_settings(
        tmp_path,
        slack_webhook_url=slack.url_for(SLACK_PATH),
        smtp_url=smtp.url,
        email_from="Acme Billing <billing@acme.test>",
        public_base_url="https://ops.acme.test",
    )


@pytest.fixture
def channels(configured: Settings) -> Channels:
    return Channels.from_settings(configured)


@pytest.fixture
def policy(configured: Settings) -> NotifyPolicy:
    return NotifyPolicy.from_settings(configured)
