"""Who is acting: named operators with their own tokens, and the one ``authenticate`` that the
JSON API and the web console both ask.

A token is ``bo_`` + ``secrets.token_urlsafe(32)`` (256 random bits), shown once by
``billing-ops operators add`` and stored only as its SHA-256. A fast hash is the right tool
here, not bcrypt/argon2: those are slow on purpose to make guessing a *low-entropy password*
expensive, which buys nothing against 256 random bits (no guess list exists), and a slow
salted hash cannot be looked up by value, so every request would have to verify against every
operator. SHA-256 lets the store find the row by its unique hash, and the stored hash is
compared again in constant time (``hmac.compare_digest``).

``OPERATOR_TOKEN`` keeps working as one admin operator named ``admin`` (compared in constant
time, never stored), so the name is reserved.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from worker.errors import BillingOpsError
from worker.store.db import read_session, write_session
from worker.store.tables import OperatorRow

log = structlog.get_logger()

#: The name the audit gives whoever holds ``OPERATOR_TOKEN``.
ADMIN_NAME = "admin"
TOKEN_PREFIX = "bo_"
#: Names end up in audit rows, timelines and log lines: short, no spaces or markup.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
#: No token of ours is this long; a longer header is refused before hashing.
MAX_TOKEN_CHARS = 256


class OperatorError(BillingOpsError):
    """An operator cannot be added or removed as asked (bad or taken name, unknown name)."""


@dataclass(frozen=True, slots=True)
class Operator:
    """An authenticated person: the name every audit row and timeline entry carries."""

    name: str
    is_admin: bool


@dataclass(frozen=True, slots=True)
class OperatorListing:
    """An operator as ``operators list`` shows it (never the token or its hash)."""

    name: str
    is_admin: bool
    created_at: datetime


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def authenticate(engine: Engine, admin_token: str | None, token: str | None) -> Operator | None:
    """The operator ``token`` belongs to, or None (no token, unknown token, removed operator)."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    if admin_token and hmac.compare_digest(token.encode(), admin_token.encode()):
        return Operator(ADMIN_NAME, is_admin=True)
    if not token.startswith(TOKEN_PREFIX):
        return None
    digest = token_digest(token)
    with read_session(engine) as session:
        row = session.scalars(select(OperatorRow).where(OperatorRow.token_sha256 == digest)).first()
    if row is None or not hmac.compare_digest(row.token_sha256, digest):
        return None
    return Operator(row.name, is_admin=row.is_admin)


def any_configured(engine: Engine, admin_token: str | None) -> bool:
    """Whether anyone at all can sign in (otherwise the API is closed, not open). A store that
    cannot answer (not migrated yet, down) names nobody: closed is the safe reading."""
    if admin_token:
        return True
    try:
        with read_session(engine) as session:
            return session.scalars(select(OperatorRow.id).limit(1)).first() is not None
    except SQLAlchemyError:
        return False


def add_operator(engine: Engine, name: str, *, is_admin: bool, now: datetime) -> str:
    """Create the operator and return their token (the only time it exists in clear)."""
    if not NAME_RE.fullmatch(name):
        raise OperatorError(
            f"operator names are 1-64 letters, digits, '.', '_', '@' or '-', got {name!r}"
        )
    if name == ADMIN_NAME:
        raise OperatorError(f"{ADMIN_NAME!r} is the OPERATOR_TOKEN holder: choose another name")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    try:
        with write_session(engine) as session:
            session.add(
                OperatorRow(
                    name=name, token_sha256=token_digest(token), is_admin=is_admin, created_at=now
                )
            )
    except IntegrityError:
        raise OperatorError(f"operator {name!r} already exists") from None
    log.info("operator_added", operator=name, is_admin=is_admin)
    return token


def list_operators(engine: Engine) -> list[OperatorListing]:
    with read_session(engine) as session:
        rows = session.scalars(select(OperatorRow).order_by(OperatorRow.name))
        return [OperatorListing(r.name, r.is_admin, r.created_at) for r in rows]


def remove_operator(engine: Engine, name: str) -> None:
    """Delete the operator: their token stops working at once (their audit rows stay)."""
    with write_session(engine) as session:
        row = session.scalars(select(OperatorRow).where(OperatorRow.name == name)).first()
        if row is None:
            raise OperatorError(f"no operator named {name!r}")
        session.delete(row)
    log.info("operator_removed", operator=name)


#: How much of a token's SHA-256 a console session keeps to recognise its token later.
SESSION_DIGEST_CHARS = 32


def session_digest(token: str) -> str:
    """What a console session remembers of the token it was opened with (never the token)."""
    return token_digest(token)[:SESSION_DIGEST_CHARS]


def session_holder(
    engine: Engine, admin_token: str | None, name: str, digest: str
) -> Operator | None:
    """The operator a console session names, while the token it was opened with still stands:
    removing an operator, or changing ``OPERATOR_TOKEN``, ends their sessions too."""
    if name == ADMIN_NAME:
        current = session_digest(admin_token) if admin_token else ""
        return Operator(ADMIN_NAME, is_admin=True) if hmac.compare_digest(current, digest) else None
    with read_session(engine) as session:
        row = session.scalars(select(OperatorRow).where(OperatorRow.name == name)).first()
    if row is None or not hmac.compare_digest(row.token_sha256[:SESSION_DIGEST_CHARS], digest):
        return None
    return Operator(row.name, is_admin=row.is_admin)
