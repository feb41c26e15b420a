"""Money for people: integer minor units stay integers until this moment."""

from __future__ import annotations

#: ISO 4217 currencies Stripe treats as zero-decimal.
ZERO_DECIMAL = frozenset(
    [
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    ]
)


def format_money(amount_minor: int | None, currency: str | None) -> str:
    """``1999, 'usd'`` → ``'19.99 USD'``; unknown amount → ``'unknown amount'``."""
    if amount_minor is None:
        return "unknown amount"
    code = (currency or "").lower()
    if code in ZERO_DECIMAL:
        return f"{amount_minor:,} {code.upper()}"
    sign = "-" if amount_minor < 0 else ""
    whole, cents = divmod(abs(amount_minor), 100)
    return f"{sign}{whole:,}.{cents:02d} {code.upper() or '???'}".strip()
