"""A stored case as typed data, and its JSON in the shape of the interface contract.

Every reader that shows a case — the case API, ``billing-ops cases``, the export, the web
console — gets a ``CaseView`` from a row here and its JSON from ``CaseView.as_json``, so the
contract has one writer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rules.case_decisions import CaseStatus
from rules.findings import Finding
from rules.versions import closest_known_version, is_known_version
from worker.case_document import CustomerView, load_document
from worker.store.tables import CaseEntryRow, CaseRow


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC; SQLite hands datetimes back without their zone."""
    return as_utc(moment).isoformat()


def as_utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime (SQLite's naive values are UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class CaseView:
    """One case as an operator sees it: its columns, its typed finding, its handoff text.

    ``at_stake_minor`` is ``finding.revenue_impact.at_stake_minor`` in ``currency`` (None when
    the case's currency is unknown); amounts are integers in the currency's minor unit."""

    id: int
    key: str
    status: CaseStatus
    kind: str
    classification: str
    severity: str
    customer: CustomerView
    finding: Finding
    handoff: Mapping[str, str]
    currency: str | None
    at_stake_minor: int
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    status_by: str | None
    status_note: str | None

    def as_json(
        self,
        entries: Sequence[CaseEntryRow] | None = None,
        api_versions: Mapping[str, str | None] | None = None,
    ) -> dict[str, Any]:
        """The contract's case document (emails masked, no card data); with ``entries``, its
        timeline too, each entry naming the API version of its event (``api_versions``: event
        id -> version) and the version it was read as when billing-ops does not know it."""
        finding = self.finding
        action = finding.recommended_action
        impact = finding.revenue_impact
        doc: dict[str, Any] = {
            "id": self.id,
            "key": self.key,
            "status": self.status.value,
            "kind": self.kind,
            "classification": self.classification,
            "severity": self.severity,
            "customer": self.customer.as_json(),
            "subjects": list(finding.subjects),
            "opened_at": iso(self.opened_at),
            "updated_at": iso(self.updated_at),
            "resolved_at": iso(self.resolved_at) if self.resolved_at else None,
            "evidence": list(finding.evidence),
            "revenue_impact": {
                "currency": impact.currency,
                "amount_minor": impact.amount_minor,
                "mrr_at_risk_minor": impact.mrr_at_risk_minor,
            },
            "recommended_action": {
                "type": action.type,
                "target": action.target,
                "reversible": action.reversible,
            },
            "reasoning": finding.reasoning,
            "question": finding.question,
            "verify_contract": finding.verify_contract,
            "guard_notes": list(finding.guard_notes),
            "handoff": dict(self.handoff),
            "status_by": self.status_by,
            "status_note": self.status_note,
        }
        if entries is not None:
            doc["timeline"] = [
                {
                    "at": iso(e.at),
                    "actor": e.actor,
                    "action": e.action,
                    "note": e.note,
                    "event_id": e.event_id,
                    **_api_version_of(e.event_id, api_versions or {}),
                }
                for e in entries
            ]
        return doc


def _api_version_of(event_id: str | None, api_versions: Mapping[str, str | None]) -> dict[str, Any]:
    """``api_version`` of a timeline entry's event, and ``api_version_read_as`` when it is a
    version billing-ops does not know (read with the closest known shape)."""
    version = api_versions.get(event_id) if event_id else None
    read_as = closest_known_version(version) if version and not is_known_version(version) else None
    return {"api_version": version, "api_version_read_as": read_as}


def case_view(row: CaseRow) -> CaseView:
    """The typed view of a stored case (its finding through the one codec)."""
    document = load_document(row.finding, row.customer_id)
    return CaseView(
        id=row.id,
        key=row.key,
        status=CaseStatus(row.status),
        kind=row.kind,
        classification=row.classification,
        severity=row.severity,
        customer=document.customer,
        finding=document.finding,
        handoff=json.loads(row.handoff),
        currency=row.currency or None,
        at_stake_minor=row.at_stake_minor,
        opened_at=as_utc(row.opened_at),
        updated_at=as_utc(row.updated_at),
        resolved_at=as_utc(row.resolved_at) if row.resolved_at else None,
        status_by=row.status_by,
        status_note=row.status_note,
    )
