"""Lookup (``/lookup?q=``): who is this — an email or a Stripe id → the person and their cases."""

from __future__ import annotations

from flask import current_app, render_template, request

from webhooks.console.auth import operator_required, signed_in
from webhooks.console.blueprint import bp
from worker.lookup import LookupQueryError, lookup


@bp.get("/lookup")
@operator_required
def lookup_page() -> tuple[str, int]:
    query = request.args.get("q", "").strip()
    result, error = None, None
    if query:
        try:
            result = lookup(current_app.config["ENGINE"], query)
        except LookupQueryError as failure:
            error = str(failure)
    return render_template(
        "console/lookup.html",
        operator=signed_in(),
        query=query,
        result=result,
        error=error,
        livemode=not (current_app.config["SETTINGS"].stripe_api_key or "").startswith(
            ("sk_test_", "rk_test_")
        ),
    ), (400 if error else 200)
