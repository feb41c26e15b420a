"""Tunable thresholds for the rules, with documented defaults.

Every number a rule compares against lives here, so an operator can change behaviour without
touching rule code, and tests can pin a rule's edge cases explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass

DAY = 86_400

# Two subscriptions to the same product created this close together look like a double checkout.
DEFAULT_DUPLICATE_SUBSCRIPTION_WINDOW_SECONDS = 3 * DAY
# Two equal successful charges this close together look like a double click / retry.
DEFAULT_DUPLICATE_CHARGE_WINDOW_SECONDS = 600
# Subscription metadata keys that mean "this is a seat / team purchase", never a duplicate.
DEFAULT_SEAT_METADATA_KEYS = ("seats", "team", "team_id", "seat_count", "workspace")
# A trial ending this many days from now without a payment method on file is a churn signal.
DEFAULT_TRIAL_ENDING_DAYS = 3
# A card expiring this many days from now on a live subscription is a churn signal.
DEFAULT_CARD_EXPIRING_DAYS = 30
# A first invoice that has needed customer action (3-D Secure, ...) this long is stale.
DEFAULT_STALE_ACTION_REQUIRED_SECONDS = DAY
# Monthly recurring revenue (minor units, any currency) at which severity steps up.
DEFAULT_MRR_MEDIUM_MINOR = 2_000
DEFAULT_MRR_HIGH_MINOR = 20_000
DEFAULT_MRR_CRITICAL_MINOR = 100_000
# A failed renewal at or beyond this attempt count is high severity (retries nearly exhausted).
DEFAULT_FAILED_RENEWAL_HIGH_ATTEMPTS = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class RulesConfig:
    """Thresholds every rule reads; the defaults are the documented ``DEFAULT_*`` constants."""

    duplicate_subscription_window_seconds: int = DEFAULT_DUPLICATE_SUBSCRIPTION_WINDOW_SECONDS
    duplicate_charge_window_seconds: int = DEFAULT_DUPLICATE_CHARGE_WINDOW_SECONDS
    seat_metadata_keys: tuple[str, ...] = DEFAULT_SEAT_METADATA_KEYS
    trial_ending_days: int = DEFAULT_TRIAL_ENDING_DAYS
    card_expiring_days: int = DEFAULT_CARD_EXPIRING_DAYS
    stale_action_required_seconds: int = DEFAULT_STALE_ACTION_REQUIRED_SECONDS
    mrr_medium_minor: int = DEFAULT_MRR_MEDIUM_MINOR
    mrr_high_minor: int = DEFAULT_MRR_HIGH_MINOR
    mrr_critical_minor: int = DEFAULT_MRR_CRITICAL_MINOR
    failed_renewal_high_attempts: int = DEFAULT_FAILED_RENEWAL_HIGH_ATTEMPTS
