"""The one codec of findings: a ``Finding`` to a JSON-ready document and back.

A finding crosses the case boundary (the store, the case API, notifications) as this
document; every reader turns it back into the typed ``Finding`` here instead of picking keys
out of a dict. Keys a later version added (``guard_notes``) have defaults, so cases stored
before them still load; keys the worker adds beside the finding (``key``, ``customer_view``)
are ignored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from rules.errors import MalformedFindingError
from rules.findings import Finding, RecommendedAction, RevenueImpact

_TUPLES = ("subjects", "evidence", "product_gaps", "signals", "guard_notes")


def finding_to_json(finding: Finding) -> dict[str, Any]:
    """A JSON-ready document of ``finding`` (lists for tuples), with its case ``key``."""
    doc = dataclasses.asdict(finding)
    for name in _TUPLES:
        doc[name] = list(doc[name])
    doc["recommended_action"]["steps"] = list(doc["recommended_action"]["steps"])
    doc["key"] = finding.key
    return doc


def finding_from_json(doc: Mapping[str, Any]) -> Finding:
    """The ``Finding`` a document of ``finding_to_json`` describes.

    Raises ``MalformedFindingError`` when a required field is missing or of the wrong shape.
    """
    try:
        values = _known_fields(Finding, doc)
        for name in _TUPLES:
            if name in values:
                values[name] = tuple(values[name])
        values["revenue_impact"] = RevenueImpact(
            **_known_fields(RevenueImpact, doc["revenue_impact"])
        )
        action = _known_fields(RecommendedAction, doc["recommended_action"])
        action["steps"] = tuple(action["steps"])
        values["recommended_action"] = RecommendedAction(**action)
        return Finding(**values)
    except (KeyError, TypeError) as exc:
        raise MalformedFindingError(f"finding document is malformed: {exc}") from exc


def _known_fields(model: type, doc: Mapping[str, Any]) -> dict[str, Any]:
    """The document's values for ``model``'s fields; a missing required field raises."""
    values: dict[str, Any] = {}
    for field in dataclasses.fields(model):
        if field.name in doc:
            values[field.name] = doc[field.name]
        elif field.default is dataclasses.MISSING:
            raise MalformedFindingError(f"finding document is missing {field.name!r}")
    return values
