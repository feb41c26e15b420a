"""The one entry point the worker calls: snapshot + event + now -> findings.

Every state-derived rule runs over the whole snapshot (all customers in it), so the result
depends on the projected state, not on which event arrived last; only the event-derived rules
(cancellations and downgrades, and a cancellation's late evidence) look at the event itself.
"""

from __future__ import annotations

from rules.checkout import find_incomplete_checkouts
from rules.churn import find_cancellations_shown_late, find_churn_events, find_churn_state
from rules.config import RulesConfig
from rules.context import RuleContext
from rules.disputes import find_disputes
from rules.duplicates import find_duplicate_charges, find_duplicate_subscriptions
from rules.events import BillingEvent
from rules.findings import Finding, merge_findings
from rules.fraud_warnings import find_fraud_warnings
from rules.guard import guard_findings
from rules.paused import find_paused_subscriptions
from rules.renewals import find_failed_renewals
from rules.snapshot import BillingSnapshot

STATE_RULES = (
    find_duplicate_subscriptions,
    find_duplicate_charges,
    find_failed_renewals,
    find_incomplete_checkouts,
    find_churn_state,
    find_paused_subscriptions,
    find_disputes,
    find_fraud_warnings,
)
EVENT_RULES = (find_churn_events, find_cancellations_shown_late)

DEFAULT_CONFIG = RulesConfig()


def evaluate(
    snapshot: BillingSnapshot,
    event: BillingEvent,
    now: int,
    config: RulesConfig = DEFAULT_CONFIG,
) -> tuple[Finding, ...]:
    """All findings that hold on ``snapshot`` plus those of ``event``, sorted and one per key,
    after the guard over them all (``rules.guard``) took out any harmful or contradictory action.

    Time is ``max(now, snapshot.as_of)``: a clock behind the newest event never un-happens it.
    """
    ctx = RuleContext.build(snapshot, max(now, snapshot.as_of), config)
    found: list[Finding] = []
    for rule in STATE_RULES:
        found.extend(rule(ctx))
    for event_rule in EVENT_RULES:
        found.extend(event_rule(ctx, event))
    return guard_findings(ctx, merge_findings(found))
