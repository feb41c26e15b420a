"""A Stripe client for bulk reads: paced to a request rate, retried by the SDK, and able to
say when the page it last fetched was asked for."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import stripe

from worker.stripe_api import DEFAULT_TIMEOUT_SECONDS

#: Requests per second by default: below Stripe's 25 read operations per second in test mode
#: and 100 in live mode (https://docs.stripe.com/rate-limits), leaving room for the workers.
DEFAULT_RATE = 20.0
#: The SDK retries connection errors, 409 and 5xx (and whatever Stripe marks with
#: ``Stripe-Should-Retry``) with exponential backoff and jitter, this many times.
DEFAULT_RETRIES = 3
_PERMISSION = re.compile(r"'(rak_[a-z0-9_]+)'")


class PacedHTTPClient(stripe.RequestsClient):
    """The SDK's requests client, at most ``rate`` requests per second (retries included)."""

    def __init__(self, rate: float, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        super().__init__(timeout=timeout)
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next_slot = 0.0
        self._lock = threading.Lock()
        #: Wall-clock second at which the latest request was sent.
        self.last_sent = int(time.time())
        self.sent = 0

    def request(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            wait = self._next_slot - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._next_slot = max(self._next_slot, time.monotonic()) + self._interval
            self.last_sent = int(time.time())
            self.sent += 1
        return super().request(*args, **kwargs)


def paced_client(
    api_key: str,
    api_base: str | None,
    *,
    rate: float = DEFAULT_RATE,
    retries: int = DEFAULT_RETRIES,
) -> tuple[stripe.StripeClient, PacedHTTPClient]:
    """A StripeClient whose every request goes through one pacer (returned too)."""
    http = PacedHTTPClient(rate)
    client = stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base} if api_base else None,
        max_network_retries=retries,
        http_client=http,
    )
    return client, http


def missing_permission(error: stripe.PermissionError) -> str:
    """The permission a restricted key lacks, as Stripe names it in the 403 message
    ("Having the 'rak_dispute_read' permission would allow this request to continue.")."""
    found = _PERMISSION.search(str(error.user_message or error))
    return found.group(1) if found else "a read permission for this endpoint"
