"""The intake: a plain Redis list between the webhook edge and Dramatiq.

The edge answers Stripe after one round trip: a MULTI/EXEC that pushes the verified body
onto ``billing-ops:intake`` and sets the "seen" hint, together or not at all. The workers'
pump (``worker.intake_pump``) moves the entries onto Dramatiq's queue with Dramatiq's public
``broker.enqueue``, so nothing here depends on how Dramatiq lays out its own keys.

The list grows at its head (``LPUSH``) and is drained from its tail, oldest first. Each entry
is an envelope: a one-line header (format version, arrival time in Unix milliseconds, the
edge's request id) and the raw body exactly as Stripe signed it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

#: The list the edge pushes to and the pump drains (one per Redis database: test runs, each
#: on a database of its own, never share one).
INTAKE_KEY = "billing-ops:intake"
#: Header of an envelope: ``v1 <arrived_ms> <request_id>`` then a newline, then the body.
_VERSION = b"v1"


@dataclass(frozen=True)
class Envelope:
    """One accepted webhook as the edge left it: body, arrival time, request id."""

    body: str
    arrived_ms: int
    request_id: str | None = None

    @classmethod
    def decode(cls, raw: bytes) -> Envelope:
        """The envelope of an intake entry. An entry without a header (none should exist) is
        taken whole as the body, so the store keeps it as malformed instead of losing it."""
        header, newline, body = raw.partition(b"\n")
        parts = header.split(b" ", 2)
        if newline and len(parts) == 3 and parts[0] == _VERSION and parts[1].isdigit():
            request_id = parts[2].decode("ascii", errors="replace") or None
            return cls(body.decode("utf-8", errors="replace"), int(parts[1]), request_id)
        return cls(raw.decode("utf-8", errors="replace"), int(time.time() * 1000))


def encode_envelope(body: bytes, arrived_ms: int, request_id: str | None) -> bytes:
    """An intake entry: the header line, then ``body`` byte for byte. The request id is the
    edge's (``[A-Za-z0-9._-]``, never a space or a newline: ``webhooks.app``)."""
    return b"%s %d %s\n%s" % (_VERSION, arrived_ms, (request_id or "").encode("ascii"), body)


def push(client: redis.Redis, entry: bytes, marker: str, ttl_seconds: int) -> bool:
    """Put ``entry`` on the intake and ``SET marker NX EX ttl`` in one MULTI/EXEC round trip.

    Returns whether the marker was new (the ``duplicate`` hint). The transaction runs both or
    neither, so a marker never exists without its intake entry; a Redis that does not answer
    raises ``redis.RedisError`` and nothing was written.
    """
    pipe = client.pipeline(transaction=True)
    pipe.lpush(INTAKE_KEY, entry)
    pipe.set(marker, 1, nx=True, ex=ttl_seconds)
    pushed, first = pipe.execute(raise_on_error=False)
    if isinstance(pushed, Exception):  # refused inside EXEC (none known): keep no marker
        if first is True:
            client.delete(marker)
        raise pushed
    return first is not None  # a failed SET alone still took the event: not a duplicate


def oldest_arrival_ms(client: redis.Redis) -> int | None:
    """The arrival time of the entry the pump takes next, or None when the intake is empty."""
    raw = client.lindex(INTAKE_KEY, -1)
    if raw is None:
        return None
    return Envelope.decode(raw if isinstance(raw, bytes) else raw.encode()).arrived_ms
