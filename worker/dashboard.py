"""Links from every Stripe id in a handoff to its page in Stripe's dashboard.

The dashboard serves an object at ``https://dashboard.stripe.com/<page>/<id>``, and the same
object of test mode under ``/test/`` (``https://dashboard.stripe.com/test/<page>/<id>``): a
test-mode id opened without ``/test/`` is a 404, and the other way round. Which mode a case
is in comes from its events' ``livemode`` ("Test mode versus live mode: API objects in one
mode aren't accessible to the other", docs.stripe.com/test-mode). The page names are the
dashboard's own (Customers, Subscriptions, Invoices, Payments, Disputes, Products); a charge
and a PaymentIntent both open under Payments. Stripe documents no URL scheme for the
dashboard, so only the pages above are linked; ids of other kinds stay plain text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

DASHBOARD = "https://dashboard.stripe.com"

#: Id prefix → the dashboard page that shows the object.
PAGES = {
    "cus_": "customers",
    "sub_": "subscriptions",
    "in_": "invoices",
    "ch_": "payments",
    "py_": "payments",
    "pi_": "payments",
    "du_": "disputes",
    "dp_": "disputes",
    "prod_": "products",
}

#: A Stripe id as it appears in handoff text: a known prefix, then letters, digits and ``_``.
ID_RE = re.compile(r"\b(?:" + "|".join(PAGES) + r")[A-Za-z0-9_]+\b")


def dashboard_url(object_id: str, livemode: bool) -> str | None:
    """The dashboard page of ``object_id`` in the right mode, or None for an unlinked kind."""
    page = next((p for prefix, p in PAGES.items() if object_id.startswith(prefix)), None)
    if page is None:
        return None
    mode = "" if livemode else "/test"
    return f"{DASHBOARD}{mode}/{page}/{object_id}"


def dashboard_links(texts: Iterable[str], livemode: bool) -> dict[str, str]:
    """Every linkable id in ``texts``, in order of first appearance, → its dashboard URL."""
    links: dict[str, str] = {}
    for text in texts:
        for object_id in ID_RE.findall(text or ""):
            url = dashboard_url(object_id, livemode)
            if url and object_id not in links:
                links[object_id] = url
    return links
