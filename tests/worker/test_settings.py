"""Configuration is read once from the environment into Settings."""

from __future__ import annotations

import pytest

from worker.errors import ConfigurationError
from worker.settings import Process, load_settings


def test_defaults_use_sqlite_in_the_data_dir_and_embedded_redis(tmp_path):
    """With nothing set, the database is a SQLite file in the data dir and Redis is embedded."""
    settings = load_settings({"BILLING_OPS_DATA_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'billing-ops.db'}"
    assert settings.embedded_redis
    assert settings.effective_redis_url == f"unix://{tmp_path / 'redis.sock'}"


def test_generated_secret_is_kept_and_reused(tmp_path):
    """serve with STRIPE_WEBHOOK_SECRET unset → one secret generated, stored 0600, reused."""
    env = {"BILLING_OPS_DATA_DIR": str(tmp_path)}
    first = load_settings(env, process=Process.ALL_IN_ONE)
    second = load_settings(env, process=Process.ALL_IN_ONE)
    assert first.webhook_secrets == second.webhook_secrets
    assert first.webhook_secrets[0].startswith("whsec_")
    assert first.secret_generated
    assert (tmp_path / "webhook_secret").stat().st_mode & 0o777 == 0o600


def test_only_serve_generates_a_secret(tmp_path):
    """Any other process reads a secret from the environment or serve's file, never makes one."""
    env = {"BILLING_OPS_DATA_DIR": str(tmp_path)}
    assert load_settings(env, process=Process.COMMAND).webhook_secrets == ()
    assert not (tmp_path / "webhook_secret").exists()
    made = load_settings(env, process=Process.ALL_IN_ONE).webhook_secrets
    assert load_settings(env).webhook_secrets == made


def test_a_secret_from_the_environment_is_not_marked_generated(tmp_path):
    """The banner shows only a generated secret; one from STRIPE_WEBHOOK_SECRET is the
    operator's own."""
    env = {"BILLING_OPS_DATA_DIR": str(tmp_path), "STRIPE_WEBHOOK_SECRET": "whsec_own"}
    settings = load_settings(env, process=Process.ALL_IN_ONE)
    assert settings.webhook_secrets == ("whsec_own",) and not settings.secret_generated


def test_comma_separated_secrets_are_all_kept(tmp_path):
    """A rotation lists several secrets; every one is tried."""
    settings = load_settings(
        {"BILLING_OPS_DATA_DIR": str(tmp_path), "STRIPE_WEBHOOK_SECRET": "whsec_a, whsec_b"}
    )
    assert settings.webhook_secrets == ("whsec_a", "whsec_b")


def test_bad_number_names_the_setting(tmp_path):
    """A malformed number fails fast with the setting's name in the message."""
    with pytest.raises(ConfigurationError, match="BILLING_OPS_MAX_BODY_BYTES"):
        load_settings({"BILLING_OPS_DATA_DIR": str(tmp_path), "BILLING_OPS_MAX_BODY_BYTES": "big"})


def test_secrets_are_not_in_the_repr(tmp_path):
    """Printing Settings never shows the API key or operator token."""
    settings = load_settings(
        {
            "BILLING_OPS_DATA_DIR": str(tmp_path),
            "STRIPE_API_KEY": "sk_test_abc123",
            "OPERATOR_TOKEN": "tok-secret",
        }
    )
    assert "sk_test_abc123" not in repr(settings)
    assert "tok-secret" not in repr(settings)


def test_rule_thresholds_come_from_the_environment(tmp_path):
    """BILLING_OPS_RULE_<FIELD> overrides a rule default; lists are comma-separated."""
    settings = load_settings(
        {
            "BILLING_OPS_DATA_DIR": str(tmp_path),
            "BILLING_OPS_RULE_DUPLICATE_CHARGE_WINDOW_SECONDS": "120",
            "BILLING_OPS_RULE_SEAT_METADATA_KEYS": "seats, org_id",
        }
    )
    assert settings.rules.duplicate_charge_window_seconds == 120
    assert settings.rules.seat_metadata_keys == ("seats", "org_id")
    assert settings.rules.trial_ending_days == 3  # untouched defaults stay


def test_bad_rule_threshold_names_the_variable(tmp_path):
    """A rule threshold that is not a whole number fails fast with its variable's name."""
    with pytest.raises(ConfigurationError, match="BILLING_OPS_RULE_TRIAL_ENDING_DAYS"):
        load_settings(
            {"BILLING_OPS_DATA_DIR": str(tmp_path), "BILLING_OPS_RULE_TRIAL_ENDING_DAYS": "soon"}
        )
