"""The ``billing-ops`` command: serve, run the processes, replay events, work the cases.

``main`` is the click group (``worker.cli.app``); each module registers its commands on it.
"""

from worker.cli import (  # noqa: F401 - registers
    actions,
    clock,
    intake,
    notifications,
    operator,
    operators,
    processes,
    sync,
)
from worker.cli.app import main

__all__ = ["main"]
