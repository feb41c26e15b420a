"""billing-ops decision core: pure functions from Stripe events and billing state to findings.

No I/O, no clock, no globals: the worker gathers inputs, calls these, and applies the result.
"""

from rules.config import RulesConfig
from rules.evaluate import evaluate
from rules.events import BillingEvent, parse_event
from rules.findings import Finding, RecommendedAction, RevenueImpact
from rules.records import (
    IGNORED_EVENT_TYPES,
    SUPPORTED_EVENT_TYPES,
    ObjectRecord,
    combine,
    record_from_json,
    record_to_json,
    records_from_event,
    supersedes,
)
from rules.snapshot import BillingSnapshot, build_snapshot, fold

__all__ = [
    "IGNORED_EVENT_TYPES",
    "SUPPORTED_EVENT_TYPES",
    "BillingEvent",
    "BillingSnapshot",
    "Finding",
    "ObjectRecord",
    "RecommendedAction",
    "RevenueImpact",
    "RulesConfig",
    "build_snapshot",
    "combine",
    "evaluate",
    "fold",
    "parse_event",
    "record_from_json",
    "record_to_json",
    "records_from_event",
    "supersedes",
]
