"""Currency exponents: how many decimal places a currency's Stripe amount has.

Stripe amounts are integers in the currency's minor unit, and the minor unit is the ISO 4217
one except where Stripe says otherwise, so the table is ISO 4217 (list one, published
2026-01-01, every code that has a minor unit) with Stripe's exceptions laid over it.

Sources:
- ISO 4217 list one, as shipped by the ``iso4217`` package 1.16.20260101 (cross-checked once,
  not a dependency: the table below is the whole of what billing-ops needs).
- Stripe, "Supported currencies" (https://docs.stripe.com/currencies): the zero-decimal list
  (BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF), the three-decimal list
  (BHD JOD KWD OMR TND) and the special cases (HUF and TWD charge in two decimals, zero-decimal
  only for payouts; ISK and UGX below).
- Stripe support, "Deprecation of fractional ISK charges and refunds": "ISK will remain a
  two-decimal currency in the Stripe API, and an ISK amount of 100 will continue to represent
  1 króna" (ISO 4217 gives ISK no minor unit).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal

# ISO 4217 list one, by minor-unit exponent (codes without a minor unit, such as XAU or XDR,
# are not money Stripe can charge and are left out).
_ISO_ZERO = (
    "bif", "clp", "djf", "gnf", "isk", "jpy", "kmf", "krw", "pyg", "rwf", "ugx", "uyi",
    "vnd", "vuv", "xaf", "xof", "xpf",
)  # fmt: skip
_ISO_TWO = (
    "aed", "afn", "all", "amd", "aoa", "ars", "aud", "awg", "azn", "bam", "bbd", "bdt",
    "bmd", "bnd", "bob", "bov", "brl", "bsd", "btn", "bwp", "byn", "bzd", "cad", "cdf",
    "che", "chf", "chw", "cny", "cop", "cou", "crc", "cup", "cve", "czk", "dkk", "dop",
    "dzd", "egp", "ern", "etb", "eur", "fjd", "fkp", "gbp", "gel", "ghs", "gip", "gmd",
    "gtq", "gyd", "hkd", "hnl", "htg", "huf", "idr", "ils", "inr", "irr", "jmd", "kes",
    "kgs", "khr", "kpw", "kyd", "kzt", "lak", "lbp", "lkr", "lrd", "lsl", "mad", "mdl",
    "mga", "mkd", "mmk", "mnt", "mop", "mru", "mur", "mvr", "mwk", "mxn", "mxv", "myr",
    "mzn", "nad", "ngn", "nio", "nok", "npr", "nzd", "pab", "pen", "pgk", "php", "pkr",
    "pln", "qar", "ron", "rsd", "rub", "sar", "sbd", "scr", "sdg", "sek", "sgd", "shp",
    "sle", "sos", "srd", "ssp", "stn", "svc", "syp", "szl", "thb", "tjs", "tmt", "top",
    "try", "ttd", "twd", "tzs", "uah", "usd", "usn", "uyu", "uzs", "ved", "ves", "wst",
    "xad", "xcd", "xcg", "yer", "zar", "zmw", "zwg",
)  # fmt: skip
_ISO_THREE = ("bhd", "iqd", "jod", "kwd", "lyd", "omr", "tnd")
_ISO_FOUR = ("clf", "uyw")

#: Withdrawn ISO codes that old Stripe objects (and Stripe's own list, for some) still carry.
_WITHDRAWN = {
    "ang": 2, "byr": 0, "cuc": 2, "eek": 2, "hrk": 2, "ltl": 2, "lvl": 2, "mro": 2,
    "sll": 2, "std": 2, "vef": 2, "zmk": 2, "zwl": 2,
}  # fmt: skip

ISO_4217_EXPONENTS: Mapping[str, int] = {
    **_WITHDRAWN,
    **dict.fromkeys(_ISO_ZERO, 0),
    **dict.fromkeys(_ISO_TWO, 2),
    **dict.fromkeys(_ISO_THREE, 3),
    **dict.fromkeys(_ISO_FOUR, 4),
}

#: Stripe's zero-decimal currencies (docs.stripe.com/currencies#zero-decimal).
STRIPE_ZERO_DECIMAL = frozenset(
    {
        "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga",
        "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf",
    }
)  # fmt: skip
#: Stripe's three-decimal currencies (docs.stripe.com/currencies#three-decimal).
STRIPE_THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})
#: Where Stripe's minor unit is not ISO's: ISK stays two-decimal in the API (ISO: none);
#: MGA is zero-decimal in Stripe (ISO: two).
STRIPE_EXCEPTIONS: Mapping[str, int] = {"isk": 2, "mga": 0}

#: The exponent of every currency billing-ops can read a Stripe amount in.
STRIPE_EXPONENTS: Mapping[str, int] = {
    **ISO_4217_EXPONENTS,
    **dict.fromkeys(STRIPE_ZERO_DECIMAL, 0),
    **dict.fromkeys(STRIPE_THREE_DECIMAL, 3),
    **STRIPE_EXCEPTIONS,
}

_CODE = re.compile(r"[a-z]{3}")


def currency_code(value: object) -> str | None:
    """The lower-case three-letter code of a well-formed currency value, else None."""
    if not isinstance(value, str):
        return None
    code = value.strip().lower()
    return code if _CODE.fullmatch(code) else None


def minor_unit_exponent(currency: object) -> int | None:
    """Decimal places of a Stripe amount in ``currency``; None when it is not a known currency."""
    code = currency_code(currency)
    return STRIPE_EXPONENTS.get(code) if code else None


def convert_minor(
    amount_minor: int | None,
    currency: str | None,
    to_currency: str,
    rates: Mapping[str, Decimal],
) -> Decimal | None:
    """``amount_minor`` of ``currency`` in minor units of ``to_currency``, through ``rates``
    (value of one major unit in a common unit); None when the amount or a rate is unknown."""
    if amount_minor is None:
        return None
    if amount_minor == 0:
        return Decimal(0)
    source, target = currency_code(currency), currency_code(to_currency)
    source_exp, target_exp = minor_unit_exponent(source), minor_unit_exponent(target)
    if source is None or target is None or source_exp is None or target_exp is None:
        return None
    if source == target:
        return Decimal(amount_minor)
    source_rate, target_rate = rates.get(source), rates.get(target)
    if source_rate is None or target_rate is None:
        return None
    major = Decimal(amount_minor).scaleb(-source_exp)
    return (major * source_rate / target_rate).scaleb(target_exp)


__all__ = [
    "ISO_4217_EXPONENTS",
    "STRIPE_EXCEPTIONS",
    "STRIPE_EXPONENTS",
    "STRIPE_THREE_DECIMAL",
    "STRIPE_ZERO_DECIMAL",
    "convert_minor",
    "currency_code",
    "minor_unit_exponent",
]
