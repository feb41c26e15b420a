"""Money for people: Stripe's minor units per currency, error markers, per-currency severity.

Stripe's "Supported currencies" page (docs.stripe.com/currencies) is the source: its
zero-decimal and three-decimal lists, and the special cases (ISK stays two-decimal in the API).
"""

from __future__ import annotations

import dataclasses

import pytest

from rules import RulesConfig
from rules.currency import (
    ISO_4217_EXPONENTS,
    STRIPE_THREE_DECIMAL,
    STRIPE_ZERO_DECIMAL,
    convert_minor,
    minor_unit_exponent,
)
from rules.findings import severity_for_mrr
from rules.formatting import (
    INVALID_AMOUNT,
    INVALID_CURRENCY,
    UNKNOWN_CURRENCY,
    format_money,
)


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (1234, "bhd", "1.234 BHD"),
        (5120, "kwd", "5.120 KWD"),
        (1000, "jod", "1.000 JOD"),
        (2500, "omr", "2.500 OMR"),
        (90, "tnd", "0.090 TND"),
        (2000, "usd", "20.00 USD"),
        (500, "JPY", "500 JPY"),
        (200_000, "vnd", "200000 VND"),
        (1200, "mga", "1200 MGA"),
        (50000, "isk", "500.00 ISK"),
        (12345, "huf", "123.45 HUF"),
        (0, "eur", "0.00 EUR"),
    ],
)
def test_amounts_use_stripes_minor_unit_of_each_currency(amount, currency, shown):
    """Three-decimal currencies show three decimals, zero-decimal none, ISK two (as Stripe)."""
    assert format_money(amount, currency) == shown


def test_the_table_covers_iso_4217_and_stripes_lists():
    """Every Stripe zero/three-decimal currency has that exponent; ISO's 170+ codes are known."""
    assert len(ISO_4217_EXPONENTS) >= 170
    assert all(minor_unit_exponent(c) == 0 for c in STRIPE_ZERO_DECIMAL)
    assert all(minor_unit_exponent(c) == 3 for c in STRIPE_THREE_DECIMAL)
    assert minor_unit_exponent("isk") == 2  # ISO says 0; Stripe's API keeps two decimals
    assert minor_unit_exponent("iqd") == 3  # ISO, where Stripe says nothing
    assert minor_unit_exponent("xau") is None  # gold has no minor unit


@pytest.mark.parametrize(
    ("amount", "currency", "marker"),
    [
        (10**30, "usd", INVALID_AMOUNT),
        (-500, "usd", INVALID_AMOUNT),
        (True, "usd", INVALID_AMOUNT),
        (2900, "<!channel>", INVALID_CURRENCY),
        (2900, "x" * 50, INVALID_CURRENCY),
        (2900, "*bold*", INVALID_CURRENCY),
        (2900, "zzz", UNKNOWN_CURRENCY),
        (2900, None, UNKNOWN_CURRENCY),
    ],
)
def test_absurd_amounts_and_currencies_render_as_an_error_marker(amount, currency, marker):
    """Nothing of an absurd amount or currency reaches the text: only the marker does."""
    shown = format_money(amount, currency)
    assert shown == marker
    assert (str(currency) if currency else "\0") not in shown
    assert "1000000000000000000000000000000" not in shown


def test_three_decimal_renewal_is_shown_in_dinars_not_tens_of_dinars(event, findings):
    """A KWD 5.120 failed renewal reads 5.120 KWD in the case, not 51.20 KWD."""
    (finding,) = findings([event("invoice.payment_failed__kwd_three_decimal")]).values()
    assert "(5.120 KWD)" in finding.reasoning


def test_severity_converts_vnd_before_comparing(event, findings):
    """A ₫200,000/month cancellation (about US$8) is low, not critical."""
    (finding,) = findings([event("customer.subscription.deleted__vnd_monthly")]).values()
    assert finding.revenue_impact.mrr_at_risk_minor == 200_000
    assert finding.severity == "low"


@pytest.mark.parametrize(
    ("mrr", "currency", "severity"),
    [
        (1_000, "usd", "low"),
        (2_000, "usd", "medium"),
        (100_000, "usd", "critical"),
        (200_000, "vnd", "low"),
        (150_000, "jpy", "critical"),  # about US$1,000
        (300_000, "kwd", "high"),  # KWD 300, about US$980
        (20_000, "eur", "high"),
        (2_900, "xcd", "medium"),  # no rate: the documented fallback
        (None, "usd", "medium"),  # MRR unknown: the same fallback
        (0, "zzz", "low"),  # nothing is nothing in any currency
    ],
)
def test_severity_thresholds_are_per_currency(mrr, currency, severity):
    """Thresholds are US dollars by default; other currencies go through the rates table."""
    assert severity_for_mrr(mrr, RulesConfig(), currency=currency) == severity


def test_severity_currency_and_rate_overrides_are_configurable():
    """Thresholds in euros, with one rate overridden, still convert through the table."""
    config = RulesConfig(severity_currency="eur", currency_rate_overrides=("xcd:0.37",))
    assert severity_for_mrr(2_900, config, currency="xcd") == "low"
    assert severity_for_mrr(2_000, config, currency="eur") == "medium"
    assert convert_minor(115, "eur", "usd", config.rates) == 115 * 115 / 100
    with pytest.raises(ValueError, match="code:positive number"):
        dataclasses.replace(config, currency_rate_overrides=("eur:cheap",))
