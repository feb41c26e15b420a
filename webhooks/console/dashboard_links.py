"""Links from a Stripe id to its page in Stripe's Dashboard, in test or live mode.

The Dashboard's paths are the ones Stripe's own docs link to (``dashboard.stripe.com/
subscriptions``, docs.stripe.com/billing/subscriptions/overview; ``dashboard.stripe.com/test/…``
for test mode, docs.stripe.com/test-mode). Charges and payment intents both open under
``payments/``.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

DASHBOARD = "https://dashboard.stripe.com"
PATHS = {
    "cus": "customers",
    "sub": "subscriptions",
    "in": "invoices",
    "ch": "payments",
    "py": "payments",
    "pi": "payments",
    "dp": "disputes",
    "du": "disputes",
    "re": "refunds",
    "prod": "products",
    "price": "prices",
}
#: A Stripe id standing alone: a known prefix, an underscore, letters and digits.
STRIPE_ID = re.compile(
    r"\b(" + "|".join(sorted(PATHS, key=len, reverse=True)) + r")_[A-Za-z0-9]+\b"
)


def dashboard_url(object_id: str, *, livemode: bool) -> str | None:
    """The Dashboard page of ``object_id``, or None for an id of a kind it has no page for."""
    match = STRIPE_ID.fullmatch(object_id)
    if match is None:
        return None
    mode = "" if livemode else "/test"
    return f"{DASHBOARD}{mode}/{PATHS[match.group(1)]}/{object_id}"


def link_ids(text: str, *, livemode: bool) -> Markup:
    """``text`` escaped for HTML, each Stripe id in it a link to the Dashboard."""
    escaped = str(escape(text))

    def link(match: re.Match[str]) -> str:
        url = dashboard_url(match.group(0), livemode=livemode)
        return (
            f'<a class="stripe-id" href="{url}" target="_blank" rel="noopener noreferrer">'
            f"{match.group(0)}</a>"
        )

    return Markup(STRIPE_ID.sub(link, escaped))
