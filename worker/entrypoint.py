"""Module the ``dramatiq`` command loads: configures this worker process at import."""

from worker.actors import setup

broker = setup().broker
