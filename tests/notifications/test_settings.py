"""Notification settings: off by default, half-configured channels refused at start-up."""

from __future__ import annotations

import pytest

from worker.errors import ConfigurationError
from worker.notifications.dunning import email_thresholds
from worker.notifications.planning import NotifyPolicy
from worker.settings import DunningSettings, load_settings


def test_nothing_is_configured_by_default(tmp_path):
    """With no Slack or SMTP settings both channels are off, the threshold is medium, and a
    new case's notifications would wait 60 s for the events still on their way."""
    policy = NotifyPolicy.from_settings(load_settings({"BILLING_OPS_DATA_DIR": str(tmp_path)}))
    assert policy == NotifyPolicy(
        channels=frozenset(), slack_min_severity="medium", settle_seconds=60
    )


@pytest.mark.parametrize(("raw", "seconds"), [("0", 0), ("1", 1), ("3600", 3600), ("", 60)])
def test_settle_window_is_read_in_seconds_and_zero_turns_it_off(tmp_path, raw, seconds):
    """BILLING_OPS_ALERT_SETTLE_SECONDS: 0 sends at once, up to an hour, empty is the default."""
    env = {"BILLING_OPS_DATA_DIR": str(tmp_path), "BILLING_OPS_ALERT_SETTLE_SECONDS": raw}
    assert NotifyPolicy.from_settings(load_settings(env)).settle_seconds == seconds


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SLACK_MIN_SEVERITY": "urgent"}, "SLACK_MIN_SEVERITY"),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_CHANNEL"),
        ({"SMTP_URL": "smtp://127.0.0.1:25"}, "EMAIL_FROM"),
        ({"SMTP_URL": "http://mail", "EMAIL_FROM": "a@b.test"}, "SMTP_URL"),
        ({"BILLING_OPS_ALERT_SETTLE_SECONDS": "1.5"}, "BILLING_OPS_ALERT_SETTLE_SECONDS"),
        ({"BILLING_OPS_ALERT_SETTLE_SECONDS": "3601"}, "BILLING_OPS_ALERT_SETTLE_SECONDS"),
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


def test_dunning_defaults_and_overrides(tmp_path):
    """Dunning: 2 reminders over 8 Stripe attempts by default; Stripe's own emails off."""
    base = {"BILLING_OPS_DATA_DIR": str(tmp_path)}
    assert load_settings(base).dunning == DunningSettings(2, 8, False)
    env = {
        **base,
        "BILLING_OPS_DUNNING_REMINDERS": "0",
        "BILLING_OPS_DUNNING_STRIPE_ATTEMPTS": "4",
        "STRIPE_FAILED_PAYMENT_EMAILS": "on",
    }
    assert load_settings(env).dunning == DunningSettings(0, 4, True)


@pytest.mark.parametrize(
    ("policy", "thresholds"),
    [
        (DunningSettings(2, 8), (1, 4, 7)),
        (DunningSettings(1, 8), (1, 7)),
        (DunningSettings(0, 8), (1,)),
        (DunningSettings(2, 4), (1, 2, 3)),
        (DunningSettings(2, 1), (1,)),
    ],
)
def test_dunning_thresholds_end_before_stripes_final_attempt(policy, thresholds):
    """The first email follows attempt 1; the last reminder follows the attempt before the last."""
    assert email_thresholds(policy) == thresholds


@pytest.mark.parametrize("env", [{"BILLING_OPS_DUNNING_REMINDERS": "-1"},
                                 {"STRIPE_FAILED_PAYMENT_EMAILS": "maybe"}])  # fmt: skip
def test_bad_dunning_setting_is_refused(tmp_path, env):
    """A negative reminder count or an unreadable on/off is refused, naming the setting."""
    with pytest.raises(ConfigurationError, match=next(iter(env))):
        load_settings({"BILLING_OPS_DATA_DIR": str(tmp_path), **env})
