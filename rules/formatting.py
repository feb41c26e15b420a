"""Money and time as people read them; amounts stay integer minor units until this moment."""

from __future__ import annotations

from datetime import UTC, datetime

#: Currencies Stripe amounts in whole units (no minor unit).
ZERO_DECIMAL_CURRENCIES = frozenset(
    {
        "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga",
        "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf",
    }
)  # fmt: skip


def format_money(amount_minor: int | None, currency: str | None) -> str:
    """Minor units as a person reads them, e.g. 2000 usd -> '20.00 USD'."""
    if amount_minor is None:
        return "unknown amount"
    code = (currency or "").lower()
    if code in ZERO_DECIMAL_CURRENCIES:
        return f"{amount_minor} {code.upper()}"
    sign = "-" if amount_minor < 0 else ""
    whole, cents = divmod(abs(amount_minor), 100)
    return f"{sign}{whole}.{cents:02d} {code.upper() or '(currency unknown)'}".rstrip()


def format_time(ts: int | None) -> str:
    """A Unix timestamp as a UTC date-time for people ('unknown' when absent)."""
    if ts is None:
        return "unknown"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")
