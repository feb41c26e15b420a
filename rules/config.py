"""Tunable thresholds for the rules, with documented defaults.

Every number a rule compares against lives here, so an operator can change behaviour without
touching rule code, and tests can pin a rule's edge cases explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from types import MappingProxyType

DAY = 86_400

# Two subscriptions to the same product created this close together look like a double checkout.
DEFAULT_DUPLICATE_SUBSCRIPTION_WINDOW_SECONDS = 3 * DAY
# Two equal successful charges this close together look like a double click / retry.
DEFAULT_DUPLICATE_CHARGE_WINDOW_SECONDS = 600
# Subscription metadata keys that mean "this is a seat / team purchase", never a duplicate.
DEFAULT_SEAT_METADATA_KEYS = ("seats", "team", "team_id", "seat_count", "workspace")
# A trial ending this many days from now without a payment method on file is a churn signal.
DEFAULT_TRIAL_ENDING_DAYS = 3
# A card expiring this many days from now on a live subscription is a churn signal.
DEFAULT_CARD_EXPIRING_DAYS = 30
# A completed Checkout whose delayed-notification payment (bank debit) has not settled this long
# is worth a look. SEPA Direct Debit "can take up to 14 business days" to report success or
# failure (https://docs.stripe.com/payments/sepa-debit), the slowest of the bank debits (ACH up
# to 4 business days, https://docs.stripe.com/payments/ach-direct-debit): three weeks covers 14
# business days with weekends and a holiday. Before that only async_payment_failed is a failure.
DEFAULT_ASYNC_PAYMENT_SETTLE_SECONDS = 21 * DAY
# Monthly recurring revenue at which severity steps up, in minor units of SEVERITY_CURRENCY
# (20, 200 and 1,000 US dollars by default). Amounts in other currencies are converted with
# CURRENCY_RATES before they are compared (see rules/severity.py).
DEFAULT_MRR_MEDIUM_MINOR = 2_000
DEFAULT_MRR_HIGH_MINOR = 20_000
DEFAULT_MRR_CRITICAL_MINOR = 100_000
DEFAULT_SEVERITY_CURRENCY = "usd"
# "code:rate" = what one major unit of the currency is worth in US dollars. Rough mid-2025
# rates: the severity bands are 5-10x apart, so a rate 30 % off rarely moves a case across one.
# CURRENCY_RATE_OVERRIDES (same form, e.g. BILLING_OPS_RULE_CURRENCY_RATE_OVERRIDES=eur:1.1)
# replace or add single rates; a currency with no rate gets the fallback severity (medium).
DEFAULT_CURRENCY_RATES = (
    "usd:1", "eur:1.15", "gbp:1.35", "chf:1.25", "cad:0.73", "aud:0.65", "nzd:0.59",
    "jpy:0.0068", "cny:0.14", "hkd:0.128", "sgd:0.78", "twd:0.033", "krw:0.00073",
    "inr:0.0116", "idr:0.000061", "thb:0.030", "myr:0.235", "php:0.0175", "vnd:0.000038",
    "sek:0.104", "nok:0.098", "dkk:0.154", "isk:0.0080", "pln:0.27", "czk:0.046",
    "huf:0.0029", "ron:0.23", "bgn:0.59", "try:0.025", "ils:0.29", "aed:0.272",
    "sar:0.267", "qar:0.275", "bhd:2.65", "kwd:3.27", "omr:2.60", "jod:1.41", "tnd:0.34",
    "egp:0.020", "mad:0.11", "zar:0.056", "ngn:0.00065", "kes:0.0077", "ugx:0.00028",
    "ghs:0.095", "mxn:0.053", "brl:0.18", "clp:0.00105", "cop:0.00025", "pen:0.28",
    "ars:0.00085", "uyu:0.025", "pkr:0.0035", "bdt:0.0082", "lkr:0.0033", "uah:0.024",
    "xof:0.00175", "xaf:0.00175",
)  # fmt: skip
# A failed renewal at or beyond this attempt count is high severity (retries nearly exhausted).
DEFAULT_FAILED_RENEWAL_HIGH_ATTEMPTS = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class RulesConfig:
    """Thresholds every rule reads; the defaults are the documented ``DEFAULT_*`` constants."""

    duplicate_subscription_window_seconds: int = DEFAULT_DUPLICATE_SUBSCRIPTION_WINDOW_SECONDS
    duplicate_charge_window_seconds: int = DEFAULT_DUPLICATE_CHARGE_WINDOW_SECONDS
    seat_metadata_keys: tuple[str, ...] = DEFAULT_SEAT_METADATA_KEYS
    trial_ending_days: int = DEFAULT_TRIAL_ENDING_DAYS
    card_expiring_days: int = DEFAULT_CARD_EXPIRING_DAYS
    async_payment_settle_seconds: int = DEFAULT_ASYNC_PAYMENT_SETTLE_SECONDS
    mrr_medium_minor: int = DEFAULT_MRR_MEDIUM_MINOR
    mrr_high_minor: int = DEFAULT_MRR_HIGH_MINOR
    mrr_critical_minor: int = DEFAULT_MRR_CRITICAL_MINOR
    severity_currency: str = DEFAULT_SEVERITY_CURRENCY
    currency_rates: tuple[str, ...] = DEFAULT_CURRENCY_RATES
    currency_rate_overrides: tuple[str, ...] = ()
    failed_renewal_high_attempts: int = DEFAULT_FAILED_RENEWAL_HIGH_ATTEMPTS

    def __post_init__(self) -> None:
        """Refuse a malformed rates table at start-up rather than at the first severity."""
        parse_currency_rates((*self.currency_rates, *self.currency_rate_overrides))
        if len(self.severity_currency) != 3 or not self.severity_currency.isalpha():
            raise ValueError(f"severity currency {self.severity_currency!r} is not a code")

    @property
    def rates(self) -> Mapping[str, Decimal]:
        """The effective rates table: the built-in one with the overrides laid over it."""
        return parse_currency_rates((*self.currency_rates, *self.currency_rate_overrides))


@cache
def parse_currency_rates(entries: tuple[str, ...]) -> Mapping[str, Decimal]:
    """``("eur:1.15", ...)`` as {code: US dollars per major unit}; ValueError when malformed."""
    rates: dict[str, Decimal] = {}
    for entry in entries:
        code, sep, raw = entry.partition(":")
        code = code.strip().lower()
        try:
            rate = Decimal(raw.strip())
        except InvalidOperation:
            rate = Decimal(0)
        if not sep or len(code) != 3 or not code.isalpha() or not rate.is_finite() or rate <= 0:
            raise ValueError(f"currency rate {entry!r} is not 'code:positive number'")
        rates[code] = rate
    return MappingProxyType(rates)
