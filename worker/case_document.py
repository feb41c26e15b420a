"""What a case row stores about its finding: the typed ``Finding`` (through the one codec,
``rules.codec``) and the masked customer view beside it. Every reader of a case — the case
API, Slack, recovery emails, the digest — goes through here, never through the raw JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rules.codec import finding_from_json, finding_to_json
from rules.findings import Finding


@dataclass(frozen=True, slots=True)
class CustomerView:
    """Who a case is about, as operators may see it: name and masked email only."""

    id: str
    name: str | None
    email_masked: str | None

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "email_masked": self.email_masked}


@dataclass(frozen=True, slots=True)
class CaseDocument:
    """A case's finding and customer view, as stored in ``cases.finding``."""

    finding: Finding
    customer: CustomerView
    plan_name: str | None = None  # the product's name when known, for Slack

    def dumps(self) -> str:
        """The stored text: the finding's codec document plus ``customer_view``."""
        doc = finding_to_json(self.finding)
        doc["customer_view"] = self.customer.as_json()
        doc["plan_name"] = self.plan_name
        return json.dumps(doc, sort_keys=True)


def load_document(text: str, customer_id: str = "") -> CaseDocument:
    """A stored case document; a case stored without a customer view gets an empty one."""
    doc = json.loads(text)
    view = doc.get("customer_view") or {}
    return CaseDocument(
        finding=finding_from_json(doc),
        customer=CustomerView(
            id=view.get("id") or customer_id,
            name=view.get("name"),
            email_masked=view.get("email_masked"),
        ),
        plan_name=doc.get("plan_name"),
    )
