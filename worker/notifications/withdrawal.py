"""Why a notification of a case is withdrawn when it falls due: the case no longer calls for it.

A new case's notifications wait out the settle window (``NotifyPolicy.settle_seconds``)
because Stripe does not deliver events in order (https://docs.stripe.com/webhooks#event-ordering):
events still on their way can clear the finding that opened the case. When a row falls due,
the case is read again; a resolved case withdraws every notification about it, whoever
resolved it — billing-ops because its finding cleared, or an operator who already dealt with
it (nothing is left to alert about or to ask the customer). An acknowledged case is still
open: its notifications go. Each channel adds its own bar in its ``prepare`` (Slack: the
severity threshold; recovery emails: a failed-renewal kind).
"""

from __future__ import annotations

from rules.case_decisions import CaseStatus
from worker.notifications import outbox
from worker.notifications.channel import Settle
from worker.store.tables import SYSTEM_ACTOR, CaseRow


def withdrawn(label: str, why: str) -> Settle:
    """Finish a row ``withdrawn``: the timeline says why, and so does ``outbox list``."""
    return Settle(outbox.WITHDRAWN, f"{label} withdrawn: {why}", why)


def for_resolved_case(case: CaseRow, label: str) -> Settle | None:
    """Withdraw a notification whose case is resolved by the time it is due."""
    if case.status != CaseStatus.RESOLVED:
        return None
    if case.status_by == SYSTEM_ACTOR:
        return withdrawn(label, "the case resolved itself: later events cleared its finding")
    return withdrawn(label, f"the case was resolved by {case.status_by or 'an operator'}")
