"""One error hierarchy for billing-ops: a root, a few families, leaves named ``...Error``."""

from __future__ import annotations


class BillingOpsError(Exception):
    """Root of every error billing-ops raises on purpose."""


class ConfigurationError(BillingOpsError):
    """Raised when a setting is missing or malformed; the message names the setting."""


class InfrastructureError(BillingOpsError):
    """Family: a service billing-ops depends on is not usable."""


class StoreUnavailableError(InfrastructureError):
    """Raised when the database cannot be reached or migrated."""


class QueueUnavailableError(InfrastructureError):
    """Raised when a message cannot be put on the Redis queue."""


class EmbeddedRedisError(InfrastructureError):
    """Raised when no Redis server binary can be found or started for the embedded default."""


class RedisUnreachableError(InfrastructureError):
    """Raised at start-up when the configured Redis does not answer."""


class PortInUseError(InfrastructureError):
    """Raised when the web port cannot be bound."""


class AlreadyRunningError(BillingOpsError):
    """Raised when another ``serve`` holds the data dir's instance lock."""


class EventError(BillingOpsError):
    """Family: an incoming event cannot be processed as given."""


class UnknownEventError(EventError):
    """Raised when an operator names an event id the store has never recorded."""


class CaseNotFoundError(BillingOpsError):
    """Raised when an operator names a case id that does not exist."""


class CaseTransitionError(BillingOpsError):
    """Raised when an operator asks for a status change the case cannot make (acknowledging a
    resolved case would reopen it)."""


class DeliveryError(BillingOpsError):
    """Family: a notification (Slack message, email) could not be delivered."""


class TransientDeliveryError(DeliveryError):
    """Raised when a channel may accept the message later (5xx, 4xx SMTP, timeout, refused)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """Raised when retrying cannot help (bad address, revoked Slack hook, no payment link)."""
