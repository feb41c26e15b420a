"""Fixtures on real services: Redis on 127.0.0.1:6379 and SQLite / PostgreSQL.

PostgreSQL tests run when ``TEST_DATABASE_URL`` is set (CI sets it); without it they skip
locally and fail in CI, so a green CI has always exercised both databases.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, create_engine, make_url, text

from tests.support import SECRET
from worker.settings import Settings
from worker.store.db import make_engine, normalise_url, upgrade_database

IN_CI = bool(os.environ.get("CI"))
LOCK_DIR = Path(tempfile.gettempdir())


def _claim_redis_database() -> str:
    """TEST_REDIS_URL, or a Redis database (1-15) on 127.0.0.1:6379 no other run holds.

    Each test run flushes its database, so two runs on one machine (two checkouts, CI and a
    developer) must never share one: a database is claimed with an exclusive lock file held
    for the whole run.
    """
    explicit = os.environ.get("TEST_REDIS_URL")
    if explicit:
        return explicit
    for index in range(15, 0, -1):
        handle = open(LOCK_DIR / f"billing-ops-tests-redis-{index}.lock", "w")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        _HELD_LOCKS.append(handle)  # released when the run's process exits
        return f"redis://127.0.0.1:6379/{index}"
    raise RuntimeError("every Redis test database 1-15 is held by another test run")


_HELD_LOCKS: list[object] = []
REDIS_URL = _claim_redis_database()
POSTGRES_ADMIN_URL = os.environ.get("TEST_DATABASE_URL")


@pytest.fixture
def redis_url() -> Iterator[str]:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError:
        if IN_CI:
            pytest.fail(f"Redis at {REDIS_URL} is not reachable in CI")
        pytest.skip(f"Redis at {REDIS_URL} is not reachable")
    client.flushdb()
    yield REDIS_URL
    client.flushdb()


@pytest.fixture(scope="session")
def postgres_run_url() -> Iterator[str]:
    """A PostgreSQL database of this run's own, created beside TEST_DATABASE_URL's, dropped after.

    Tests empty their database between them; a database per run keeps two runs on one server
    (two checkouts, CI and a developer) from emptying each other's.
    """
    if not POSTGRES_ADMIN_URL:
        if IN_CI:
            pytest.fail("TEST_DATABASE_URL must point at PostgreSQL in CI")
        pytest.skip("TEST_DATABASE_URL is not set")
    admin = make_url(POSTGRES_ADMIN_URL)
    name = f"{admin.database}_run_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    engine = create_engine(normalise_url(POSTGRES_ADMIN_URL), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def _fresh_postgres(url: str) -> str:
    """This run's PostgreSQL database, emptied."""
    engine = create_engine(normalise_url(url))
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'billing-ops.db'}"
    return _fresh_postgres(request.getfixturevalue("postgres_run_url"))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'billing-ops.db'}"


@pytest.fixture
def engine(database_url: str, tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(database_url)
    upgrade_database(engine, tmp_path)
    yield engine
    engine.dispose()


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path,
        webhook_secrets=(SECRET,),
        database_url=database_url,
        redis_url=redis_url,
        operator_token="op-token-for-tests",
        log_format="json",
        alert_settle_seconds=0,  # notifications at once; tests/notifications/test_settle_window.py
    )


@pytest.fixture
def postgres_url(postgres_run_url: str) -> str:
    """A freshly emptied PostgreSQL database, for tests that only PostgreSQL can stage."""
    return _fresh_postgres(postgres_run_url)


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    """The independent Stripe emulator, localstripe, on a free loopback port."""
    from tests.support import LOCALSTRIPE, start_localstripe

    if not LOCALSTRIPE.exists():
        if IN_CI:
            pytest.fail("localstripe is not installed (pip install -e '.[test]')")
        pytest.skip("localstripe is not installed")
    try:
        process, url = start_localstripe()
    except RuntimeError as error:
        pytest.fail(str(error))
    yield url
    process.terminate()
    process.wait(timeout=10)
