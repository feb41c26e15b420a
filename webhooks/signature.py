"""Stripe-Signature verification over the raw body, with rotation and a two-sided time window.

The header is parsed once, here, one way: ``t`` must appear exactly once (exact key, ASCII
digits), ``v1`` any number of times, other schemes are ignored. The stripe library's own HMAC
comparison (``WebhookSignature.verify_header``) is then handed a header rebuilt from exactly
those values, so the timestamp whose window is checked here is the one the signature covers
(a header like ``t =<now>,t=<old>,v1=<sig at old>`` cannot pass one value to each check).
The window is checked on both sides: a timestamp from the future is refused as well as a stale
one. Header format: https://docs.stripe.com/webhooks/signatures (verify manually).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from stripe import SignatureVerificationError, WebhookSignature

#: A Unix timestamp: digits only (``int()`` would also take ``+1``, `` 1`` or ``1_0``).
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")
_SIGNATURE_RE = re.compile(r"[0-9a-fA-F]{64}")


class WebhookRejected(Exception):
    """Raised when a delivery must be refused; ``code`` is the contract's error code."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class SignatureHeader:
    """A parsed ``Stripe-Signature``: the one signed timestamp and its v1 signatures."""

    timestamp: int
    signatures: tuple[str, ...]

    def canonical(self) -> str:
        """The header rebuilt from the parsed values only."""
        return ",".join([f"t={self.timestamp}", *(f"v1={s}" for s in self.signatures)])


def parse_signature_header(header: str) -> SignatureHeader:
    """Parse ``t=…,v1=…[,v1=…]``; raise ``WebhookRejected`` unless it is unambiguous."""
    timestamps: list[str] = []
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.partition("=")
        if key == "t":
            timestamps.append(value)
        elif key == "v1" and _SIGNATURE_RE.fullmatch(value):
            signatures.append(value)
    if len(timestamps) != 1 or not _TIMESTAMP_RE.fullmatch(timestamps[0]):
        raise WebhookRejected("invalid_signature", "Stripe-Signature needs exactly one t=<digits>")
    if not signatures:
        raise WebhookRejected("invalid_signature", "Stripe-Signature has no v1 signature")
    return SignatureHeader(timestamp=int(timestamps[0]), signatures=tuple(signatures))


def verify_signature(
    body: str, header: str | None, secrets: Sequence[str], *, now: float, tolerance: int
) -> None:
    """Raise ``WebhookRejected`` unless ``header`` signs ``body`` with one of ``secrets``
    at a time within ``tolerance`` seconds of ``now``."""
    if not header:
        raise WebhookRejected("missing_signature", "Stripe-Signature header is missing")
    parsed = parse_signature_header(header)
    canonical = parsed.canonical()
    for secret in secrets:
        try:
            WebhookSignature.verify_header(body, canonical, secret, tolerance=None)
        except SignatureVerificationError:
            continue
        break
    else:
        raise WebhookRejected("invalid_signature", "no v1 signature matches a configured secret")
    if abs(now - parsed.timestamp) > tolerance:
        raise WebhookRejected(
            "timestamp_out_of_tolerance", f"signed timestamp is more than {tolerance} s from now"
        )
