"""The operators' web console, served by the same Flask app as the webhook edge and the API.

Server-rendered pages (Jinja2), readable without JavaScript; a vendored htmx refreshes the
queue in place and ``console.js`` adds keyboard navigation and the copy button. No inline
script anywhere: the Content-Security-Policy forbids it.
"""

from __future__ import annotations

from flask import Flask

from worker.settings import Settings


def register_console(app: Flask, settings: Settings) -> None:
    """Session, CSRF and the console's pages; the machine blueprints stay token-only."""
    from webhooks.console import (  # noqa: F401 - each module adds its routes to the blueprint
        action_page,
        auth,
        case_page,
        health_page,
        lookup_page,
        queue_page,
    )
    from webhooks.console.blueprint import bp
    from webhooks.console.security import configure, exempt_machine_blueprints

    configure(app, settings)
    app.register_blueprint(bp)
    exempt_machine_blueprints(app, "stripe_webhooks", "operator_api", "health")
