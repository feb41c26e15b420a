"""Notification settings: off by default, half-configured channels refused at start-up."""

from __future__ import annotations

import pytest

from worker.errors import ConfigurationError
from worker.notifications.planning import NotifyPolicy
from worker.settings import load_settings


def test_nothing_is_configured_by_default(tmp_path):
    """With no Slack or SMTP settings both channels are off and the threshold is medium."""
    policy = NotifyPolicy.from_settings(load_settings({"BILLING_OPS_DATA_DIR": str(tmp_path)}))
    assert policy == NotifyPolicy(slack=False, email=False, slack_min_severity="medium")


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SLACK_MIN_SEVERITY": "urgent"}, "SLACK_MIN_SEVERITY"),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_CHANNEL"),
        ({"SMTP_URL": "smtp://127.0.0.1:25"}, "EMAIL_FROM"),
        ({"SMTP_URL": "http://mail", "EMAIL_FROM": "a@b.test"}, "SMTP_URL"),
    ],
)
def test_half_configured_channel_fails_fast(tmp_path, env, named):
    """A malformed or incomplete notification setting is refused, naming the setting."""
    with pytest.raises(ConfigurationError, match=named):
        load_settings({"BILLING_OPS_DATA_DIR": str(tmp_path), **env})


def test_slack_token_is_not_in_the_repr(tmp_path):
    """Printing Settings never shows the Slack bot token or the SMTP password."""
    settings = load_settings(
        {
            "BILLING_OPS_DATA_DIR": str(tmp_path),
            "SLACK_BOT_TOKEN": "xoxb-secret-token",
            "SLACK_CHANNEL": "#ops",
            "SMTP_URL": "smtp://user:hunter2@mail.test:587?starttls=true",
            "EMAIL_FROM": "billing@acme.test",
        }
    )
    assert "xoxb-secret-token" not in repr(settings) and "hunter2" not in repr(settings)
