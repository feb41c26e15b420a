"""The HTTP edge of billing-ops: verify, reject, enqueue, ack — and the operator API.

The package root imports nothing heavy: gunicorn's master imports ``webhooks.gunicorn_config``
(hence this package) before it forks the gevent workers, and a library imported before gevent
patches the standard library (Flask, Dramatiq, redis-py) would keep unpatched internals.
``create_app`` loads the app only when it is called, in the worker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(*args: Any, **kwargs: Any) -> Flask:
    """The app factory (``webhooks.app.create_app``), imported on first call."""
    from webhooks.app import create_app as factory

    return factory(*args, **kwargs)
