"""The dunning cadence: which failed attempts of an invoice earn the customer an email.

Stripe may try a card up to eight times under Smart Retries; one email per attempt is noise.
billing-ops emails after the first failure and then sends at most ``reminders`` more, spread
evenly so that the last one follows the attempt before Stripe's final one (the customer can
still act before it). An invoice's emails are numbered by how many of these thresholds its
``attempt_count`` has reached, so a lost webhook or a redelivery never adds an email.
"""

from __future__ import annotations

import math

from worker.settings import DunningSettings


def email_thresholds(policy: DunningSettings) -> tuple[int, ...]:
    """The attempt counts at which an email is due, e.g. (1, 4, 7) for 2 reminders of 8 tries."""
    last = max(policy.stripe_attempts - 1, 1)
    steps = {1}
    for k in range(1, policy.reminders + 1):
        steps.add(1 + math.ceil((last - 1) * k / policy.reminders))
    return tuple(sorted(steps))


def email_index(attempt_count: int, policy: DunningSettings) -> int:
    """How many emails an invoice at ``attempt_count`` is owed (0: none yet)."""
    return sum(1 for threshold in email_thresholds(policy) if attempt_count >= threshold)


def next_threshold(index: int, policy: DunningSettings) -> int | None:
    """The attempt count at which the email after number ``index`` is due (None: no more)."""
    thresholds = email_thresholds(policy)
    return thresholds[index] if index < len(thresholds) else None
