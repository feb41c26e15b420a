"""Engines, transactions and migrations for SQLite and PostgreSQL alike.

SQLite is the single-machine default, not a toy: WAL, a busy timeout, and ``BEGIN IMMEDIATE``
for write transactions so that two writers queue for the lock instead of failing half-way.
"""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session

from worker.errors import ConfigurationError, StoreUnavailableError

#: How long a SQLite writer waits for the lock before giving up.
SQLITE_BUSY_TIMEOUT_MS = 30_000
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
#: Advisory lock key that serialises concurrent migrations on PostgreSQL.
MIGRATION_LOCK_KEY = 0x0B111_0_0


def normalise_url(url: str) -> str:
    """Accept the usual ``postgres://`` / ``postgresql://`` forms and use psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


#: How long a PostgreSQL connection attempt may take before it counts as unreachable.
POSTGRES_CONNECT_TIMEOUT_SECONDS = 10
#: The databases billing-ops is tested on.
SUPPORTED_BACKENDS = ("sqlite", "postgresql")


def make_engine(url: str) -> Engine:
    """An engine for ``url``; nothing connects until first use.

    A URL that is not one of the supported databases is a ``ConfigurationError`` naming
    ``DATABASE_URL``, not a traceback from deep inside SQLAlchemy.
    """
    url = normalise_url(url)
    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError:
        raise ConfigurationError(
            f"DATABASE_URL {url!r} is not a database URL: use sqlite:///PATH or "
            "postgresql://USER@HOST:PORT/DB"
        ) from None
    if backend not in SUPPORTED_BACKENDS:
        raise ConfigurationError(
            f"DATABASE_URL uses {backend}, which billing-ops does not support: use "
            "sqlite:///PATH or postgresql://USER@HOST:PORT/DB"
        )
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            _make_folder(Path(path).parent, "DATABASE_URL's SQLite file")
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, hide_parameters=True
        )
        _tune_sqlite(engine)
        return engine
    # hide_parameters: an error's text (logged, kept as an event's last_error) names the
    # statement, never the values bound to it (emails, payloads)
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        hide_parameters=True,
        # a host that drops packets is a one-line error after this long, not a hang
        connect_args={"connect_timeout": POSTGRES_CONNECT_TIMEOUT_SECONDS},
    )


def _make_folder(folder: Path, what: str) -> None:
    """Create ``folder`` (for ``what``), or say in one line why it cannot be."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigurationError(
            f"cannot create the folder {folder} for {what} ({error.strerror or error}): point "
            "BILLING_OPS_DATA_DIR or DATABASE_URL at a folder this user can write"
        ) from None


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection) -> None:  # type: ignore[no-untyped-def]
        write = connection.get_execution_options().get("billing_ops_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A session for reads; nothing it does is committed."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


@contextmanager
def write_session(engine: Engine, lock_keys: Iterable[str] = ()) -> Iterator[Session]:
    """One short write transaction, committed on success, rolled back on error.

    ``lock_keys`` serialise work on the same person across processes and machines:
    PostgreSQL takes a transaction-scoped advisory lock per key (in sorted order, so two
    transactions never deadlock on them); SQLite's ``BEGIN IMMEDIATE`` already holds the
    one database write lock for the whole transaction.
    """
    bind = engine.execution_options(billing_ops_write=True)
    with Session(bind, expire_on_commit=False) as session, session.begin():
        if not is_sqlite(engine):
            for key in sorted(set(lock_keys)):
                session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_id(key)})
        yield session


def lock_id(key: str) -> int:
    """A stable signed 64-bit id for an advisory lock name."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


def ping_database(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def upgrade_database(engine: Engine, data_dir: Path | None = None) -> None:
    """Apply every migration (idempotent; safe when several processes start at once).

    An unreachable database is a ``StoreUnavailableError`` in one line (where, and why).
    """
    try:
        _upgrade(engine, data_dir)
    except OperationalError as error:
        url = engine.url
        if url.get_backend_name() == "postgresql":  # as the operator wrote it, not +psycopg
            url = url.set(drivername="postgresql")
        where = url.render_as_string(hide_password=True)
        reason = str(error.orig or error).strip().splitlines()[0]
        raise StoreUnavailableError(
            f"database unreachable at {where} ({reason}): start it or fix DATABASE_URL"
        ) from None


def _upgrade(engine: Engine, data_dir: Path | None) -> None:
    config = alembic_config(engine)
    if is_sqlite(engine):
        lock_dir = data_dir or Path(engine.url.database or ".").resolve().parent
        _make_folder(lock_dir, "the migration lock")
        with open(lock_dir / "migrate.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            command.upgrade(config, "head")
        return
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        connection.commit()
        try:
            command.upgrade(config, "head")
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
            connection.commit()
