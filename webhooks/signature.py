"""Stripe-Signature verification over the raw body, with rotation and a two-sided time window.

The HMAC comparison is the stripe library's own (``WebhookSignature.verify_header``), called
once per configured secret with the timestamp check off; the window is then checked here on
both sides, so that a timestamp from the future is refused as well as a stale one.
"""

from __future__ import annotations

from collections.abc import Sequence

from stripe import SignatureVerificationError, WebhookSignature


class WebhookRejected(Exception):
    """Raised when a delivery must be refused; ``code`` is the contract's error code."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def _timestamp(header: str) -> int:
    for part in header.split(","):
        key, _, value = part.partition("=")
        if key.strip() == "t":
            return int(value)
    raise ValueError("no t= in header")


def verify_signature(
    body: str, header: str | None, secrets: Sequence[str], *, now: float, tolerance: int
) -> None:
    """Raise ``WebhookRejected`` unless ``header`` signs ``body`` with one of ``secrets``
    at a time within ``tolerance`` seconds of ``now``."""
    if not header:
        raise WebhookRejected("missing_signature", "Stripe-Signature header is missing")
    for secret in secrets:
        try:
            WebhookSignature.verify_header(body, header, secret, tolerance=None)
        except SignatureVerificationError:
            continue
        break
    else:
        raise WebhookRejected("invalid_signature", "no v1 signature matches a configured secret")
    if abs(now - _timestamp(header)) > tolerance:
        raise WebhookRejected(
            "timestamp_out_of_tolerance", f"signed timestamp is more than {tolerance} s from now"
        )
