"""Errors raised by the pure rules core.

One root per package keeps ``except`` clauses honest: the worker can catch ``RulesError`` for
anything the decision core refuses, without swallowing programming errors.
"""

from __future__ import annotations


class RulesError(Exception):
    """Root of every error the ``rules`` package raises on purpose."""


class MalformedEventError(RulesError, ValueError):
    """Raised when a payload is not a Stripe event object (missing id, type, created or data)."""


class MalformedRecordError(RulesError, ValueError):
    """Raised when a stored record document cannot be turned back into an ``ObjectRecord``."""


class MalformedFindingError(RulesError, ValueError):
    """Raised when a stored finding document cannot be turned back into a ``Finding``."""
