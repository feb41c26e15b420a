"""The queue (``/``): open cases, sorted and filtered, counts per kind, refreshed in place."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app, render_template, request

from rules.findings import CLASSIFICATIONS, KINDS
from webhooks.console.auth import operator_required, signed_in
from webhooks.console.blueprint import bp
from webhooks.console.queue_source import STATUS_CHOICES, QueueFilters, QueueSort, queue_page

#: Seconds between the queue's refreshes in the browser (htmx swaps the table in place).
DEFAULT_REFRESH_SECONDS = 30


def age(opened_at: datetime, now: datetime) -> str:
    """How long a case has waited, in the largest unit that says it: 3d, 5h, 12m."""
    seconds = max(0, int((now - opened_at).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@bp.get("/")
@operator_required
def queue() -> str:
    filters = QueueFilters.from_args(request.args.to_dict())
    page = queue_page(current_app.config["ENGINE"], filters)
    return render_template(
        "console/queue.html",
        operator=signed_in(),
        filters=filters,
        page=page,
        now=datetime.now(UTC),
        age=age,
        kinds=sorted(KINDS),
        classifications=sorted(CLASSIFICATIONS),
        statuses=STATUS_CHOICES,
        sorts=[s.value for s in QueueSort],
        refresh_seconds=current_app.config.get("CONSOLE_REFRESH_SECONDS", DEFAULT_REFRESH_SECONDS),
        query_string=request.query_string.decode("ascii", "replace"),
    )
