"""Severity currency and exchange rates come from the environment, validated at start-up."""

from __future__ import annotations

import pytest

from worker.errors import ConfigurationError
from worker.settings import load_settings


def test_severity_currency_and_rate_overrides_from_the_environment(tmp_path):
    """BILLING_OPS_RULE_SEVERITY_CURRENCY and ..._CURRENCY_RATE_OVERRIDES reach the rules."""
    settings = load_settings(
        {
            "BILLING_OPS_DATA_DIR": str(tmp_path),
            "BILLING_OPS_RULE_SEVERITY_CURRENCY": "EUR",
            "BILLING_OPS_RULE_CURRENCY_RATE_OVERRIDES": "xcd:0.37, eur:1.10",
        }
    )
    assert settings.rules.severity_currency == "eur"
    assert settings.rules.rates["xcd"] == settings.rules.rates["usd"] * 37 / 100
    assert str(settings.rules.rates["eur"]) == "1.10"
    assert "gbp" in settings.rules.rates  # the built-in table stays underneath


def test_malformed_currency_rate_fails_fast(tmp_path):
    """A rate that is not 'code:positive number' stops start-up with the variable named."""
    with pytest.raises(ConfigurationError, match="BILLING_OPS_RULE_.*eur:cheap"):
        load_settings(
            {
                "BILLING_OPS_DATA_DIR": str(tmp_path),
                "BILLING_OPS_RULE_CURRENCY_RATE_OVERRIDES": "eur:cheap",
            }
        )
