"""Fixtures on real services: Redis on 127.0.0.1:6379 and SQLite / PostgreSQL.

PostgreSQL tests run when ``TEST_DATABASE_URL`` is set (CI sets it); without it they skip
locally and fail in CI, so a green CI has always exercised both databases.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, create_engine, text

from tests.support import SECRET
from worker.settings import Settings
from worker.store.db import make_engine, normalise_url, upgrade_database

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get("TEST_DATABASE_URL")
IN_CI = bool(os.environ.get("CI"))


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


def _fresh_postgres() -> str:
    """TEST_DATABASE_URL, emptied; skipped locally without it, a failure in CI."""
    if not POSTGRES_URL:
        if IN_CI:
            pytest.fail("TEST_DATABASE_URL must point at PostgreSQL in CI")
        pytest.skip("TEST_DATABASE_URL is not set")
    _reset_postgres(POSTGRES_URL)
    return POSTGRES_URL


def _reset_postgres(url: str) -> None:
    engine = create_engine(normalise_url(url))
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'billing-ops.db'}"
    return _fresh_postgres()


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
    )


@pytest.fixture
def postgres_url() -> str:
    """A freshly emptied PostgreSQL database, for tests that only PostgreSQL can stage."""
    return _fresh_postgres()


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    """The independent Stripe emulator, localstripe, on a free loopback port."""
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    from tests.support import free_port

    binary = Path(sys.executable).parent / "localstripe"
    if not binary.exists():
        if IN_CI:
            pytest.fail("localstripe is not installed (pip install -e '.[test]')")
        pytest.skip("localstripe is not installed")
    port = free_port()
    process = subprocess.Popen(
        [str(binary), "--port", str(port), "--from-scratch"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/v1/customers", timeout=1)
        except urllib.error.HTTPError:
            break  # it answers (401 without a key): up
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail("localstripe did not start")
            time.sleep(0.1)
            continue
        break
    yield url
    process.terminate()
    process.wait(timeout=10)
