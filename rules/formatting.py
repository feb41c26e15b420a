"""Money and time as people read them; amounts stay integer minor units until this moment.

This is the one money formatter: every person-facing rendering (handoff, recovery email,
Slack, digest, CLI) goes through ``format_money``, so an amount or currency that cannot be
real is shown as an error marker there, never as the text it arrived with.
"""

from __future__ import annotations

from datetime import UTC, datetime

from rules.currency import currency_code, minor_unit_exponent

#: The largest amount shown as money. Stripe's largest single amount has 12 digits (IDR
#: 999,999,999,999 in minor units, docs.stripe.com/currencies#minimum-and-maximum-charge-amounts);
#: three more digits leave room for sums (digest totals, MRR of many seats).
MAX_DISPLAY_AMOUNT_MINOR = 10**15

#: Error markers: plain ASCII, no markup a Slack or HTML renderer would act on.
INVALID_AMOUNT = "[invalid amount]"
INVALID_CURRENCY = "[invalid currency]"
UNKNOWN_CURRENCY = "[amount in unknown currency]"
UNKNOWN_AMOUNT = "unknown amount"


def money_error(amount_minor: object, currency: object) -> str | None:
    """The error marker for an amount or currency that cannot be shown as money, else None.

    An amount must be a non-negative integer (bool is not) no larger than
    ``MAX_DISPLAY_AMOUNT_MINOR``; a currency must be a three-letter code with a known exponent.
    """
    if (
        isinstance(amount_minor, bool)
        or not isinstance(amount_minor, int)
        or not 0 <= amount_minor <= MAX_DISPLAY_AMOUNT_MINOR
    ):
        return INVALID_AMOUNT
    if currency is None:
        return UNKNOWN_CURRENCY
    if currency_code(currency) is None:
        return INVALID_CURRENCY
    if minor_unit_exponent(currency) is None:
        return UNKNOWN_CURRENCY
    return None


def format_money(amount_minor: int | None, currency: str | None) -> str:
    """Minor units as a person reads them: 2000 usd -> '20.00 USD', 1234 bhd -> '1.234 BHD',
    500 jpy -> '500 JPY'; None -> 'unknown amount'; anything absurd -> an error marker."""
    if amount_minor is None:
        return UNKNOWN_AMOUNT
    error = money_error(amount_minor, currency)
    if error is not None:
        return error
    code = currency_code(currency) or ""
    exponent = minor_unit_exponent(code) or 0
    if exponent == 0:
        return f"{amount_minor} {code.upper()}"
    whole, fraction = divmod(amount_minor, 10**exponent)
    return f"{whole}.{fraction:0{exponent}d} {code.upper()}"


def format_time(ts: int | None) -> str:
    """A Unix timestamp as a UTC date-time for people ('unknown' when absent)."""
    if ts is None:
        return "unknown"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")
