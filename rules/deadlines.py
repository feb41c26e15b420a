"""A dispute's evidence deadline as time passes: nothing, then "respond today", then "passed".

Stripe's ``evidence_details.due_by`` is the "date by which evidence must be submitted in order
to successfully challenge dispute"; 0 or null when the bank allows no response (API reference,
The Dispute object). Only a dispute still waiting for a response (``needs_response``,
``warning_needs_response``) has a deadline that matters; under review, the evidence is in.
The clock (``rules.due``) re-evaluates the person at each threshold, so the case changes with
no event.
"""

from __future__ import annotations

from dataclasses import dataclass

from rules.formatting import format_time
from rules.model import Dispute

DAY = 86_400
#: Evidence due within this long: the operator must respond today, not this week.
EVIDENCE_URGENT_SECONDS = 2 * DAY
AWAITING_RESPONSE_STATUSES = frozenset({"needs_response", "warning_needs_response"})


@dataclass(frozen=True, slots=True)
class DeadlineReading:
    """The deadline's signals and the step it adds (none while it is still far)."""

    signals: tuple[str, ...] = ()
    step: str | None = None


def evidence_deadline_thresholds(dispute: Dispute) -> tuple[int, ...]:
    """The instants at which ``read_evidence_deadline`` changes its answer."""
    due = dispute.evidence_due_by
    if not due or dispute.status not in AWAITING_RESPONSE_STATUSES:
        return ()
    return (due - EVIDENCE_URGENT_SECONDS, due)


def read_evidence_deadline(dispute: Dispute, as_of: int) -> DeadlineReading:
    """How close the evidence deadline is at ``as_of``, for a dispute awaiting a response."""
    thresholds = evidence_deadline_thresholds(dispute)
    if not thresholds:
        return DeadlineReading()
    urgent, due = thresholds
    if as_of >= due:
        return DeadlineReading(
            ("evidence_deadline_passed",),
            f"The evidence deadline ({format_time(due)}) has passed: check in the Dashboard "
            "whether evidence was submitted; without it the bank decides on the "
            "cardholder's word",
        )
    if as_of >= urgent:
        return DeadlineReading(
            ("evidence_due_soon",),
            f"Respond today: the evidence is due by {format_time(due)}",
        )
    return DeadlineReading()
