"""``billing-ops cases export``: every matching case as one flat record, JSON Lines or CSV.

Rows are written as ``worker.case_queries.iter_cases`` reads them (a batch at a time), so
memory stays flat however many cases there are. Emails are masked as everywhere else; amounts
are integers in the currency's minor unit beside the currency code.

CSV is for spreadsheets, so its text cells are made inert: control characters show as visible
escapes (``\\x1b``, as in the CLI's text views), and a cell that starts with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return — what Excel, LibreOffice and Google Sheets read as
a formula (OWASP, "CSV Injection") — gets a leading ``'`` so it stays text. Quoting is the
``csv`` module's.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from enum import StrEnum
from typing import Any, TextIO

from worker.case_view import CaseView, iso
from worker.textsafety import for_terminal

#: The columns of an exported case, in CSV order (JSON Lines uses the same keys).
COLUMNS = (
    "id",
    "key",
    "status",
    "kind",
    "classification",
    "severity",
    "customer_id",
    "customer_name",
    "customer_email_masked",
    "currency",
    "amount_minor",
    "mrr_at_risk_minor",
    "at_stake_minor",
    "recommended_action",
    "recommended_target",
    "subjects",
    "opened_at",
    "updated_at",
    "resolved_at",
    "status_by",
    "status_note",
)
#: First characters a spreadsheet takes as the start of a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class ExportFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"


def export_record(case: CaseView) -> dict[str, Any]:
    """One case as a flat record: masked email, integer minor units, ISO 8601 UTC times."""
    impact = case.finding.revenue_impact
    action = case.finding.recommended_action
    return {
        "id": case.id,
        "key": case.key,
        "status": case.status.value,
        "kind": case.kind,
        "classification": case.classification,
        "severity": case.severity,
        "customer_id": case.customer.id,
        "customer_name": case.customer.name,
        "customer_email_masked": case.customer.email_masked,
        "currency": case.currency,
        "amount_minor": impact.amount_minor,
        "mrr_at_risk_minor": impact.mrr_at_risk_minor,
        "at_stake_minor": case.at_stake_minor,
        "recommended_action": action.type,
        "recommended_target": action.target,
        "subjects": list(case.finding.subjects),
        "opened_at": iso(case.opened_at),
        "updated_at": iso(case.updated_at),
        "resolved_at": iso(case.resolved_at) if case.resolved_at else None,
        "status_by": case.status_by,
        "status_note": case.status_note,
    }


def safe_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: controls escaped, formulas neutralised.
    Numbers and empty cells pass unchanged; lists become space-separated text."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, list)):
        return value
    text = " ".join(value) if isinstance(value, list) else value
    text = for_terminal(text)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def write_export(cases: Iterable[CaseView], output: TextIO, fmt: ExportFormat) -> int:
    """Write ``cases`` to ``output`` as they come; how many were written."""
    count = 0
    writer = csv.writer(output, lineterminator="\n")
    if fmt is ExportFormat.CSV:
        writer.writerow(COLUMNS)
    for case in cases:
        record = export_record(case)
        if fmt is ExportFormat.CSV:
            writer.writerow([safe_cell(record[column]) for column in COLUMNS])
        else:
            output.write(json.dumps(record, separators=(",", ":")) + "\n")
        count += 1
    return count
