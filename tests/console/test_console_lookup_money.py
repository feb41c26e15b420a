"""The console's lookup page shows money from lookup's integer minor units, as people read it."""

from __future__ import annotations

import re

from tests.console.test_console_security import signed_in
from worker.lookup import lookup


def test_lookup_page_formats_prices_and_invoices_from_minor_units(console_app):
    """Each subscription price and invoice amount is shown formatted (e.g. ``29.00 USD``), the
    same figure lookup gives in minor units."""
    doc = lookup(console_app.config["ENGINE"], "pi_AdaA")
    client = signed_in(console_app)
    page = client.get("/lookup?q=pi_AdaA").get_data(as_text=True)
    items = [i for s in doc["subscriptions"]["active"] for i in s["items"]]
    assert items or doc["invoices"]
    for item in items:
        whole = item["unit_amount_minor"] // 100
        assert re.search(rf"{whole}\.\d\d {item['currency'].upper()}/", page), page
    for invoice in doc["invoices"]:
        whole = invoice["amount_due_minor"] // 100
        assert f"{whole}." in page and invoice["currency"].upper() in page
