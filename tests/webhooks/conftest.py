from __future__ import annotations

from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from tests.support import SECRET
from webhooks import create_app
from worker.settings import Settings


@pytest.fixture
def edge_settings(tmp_path: Path, redis_url: str, sqlite_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path,
        webhook_secrets=(SECRET,),
        database_url=sqlite_url,
        redis_url=redis_url,
        log_format="json",
        max_body_bytes=64 * 1024,
    )


@pytest.fixture
def app(edge_settings: Settings) -> Flask:
    return create_app(edge_settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def queued(redis_url: str):
    """How many messages sit on the events queue in Redis right now."""
    client = redis.Redis.from_url(redis_url)
    return lambda: client.hlen("dramatiq:events.msgs")
