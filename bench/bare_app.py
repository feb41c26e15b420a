"""The floor for ``bench/ingest.py``: a bare Flask app that answers ``{}`` to a POST.

Served by gunicorn with the same settings as the real app (``bare_app:app``), on the same
path, so the only difference measured is what billing-ops does inside its view.
"""

from __future__ import annotations

from flask import Flask

app = Flask(__name__)


@app.post("/webhooks/stripe")
def receive() -> dict[str, object]:
    """Answer ``{}`` without reading, verifying or enqueueing anything."""
    return {}
