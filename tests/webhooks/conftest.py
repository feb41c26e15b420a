from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import REDIS_URL
from tests.support import SECRET, duplicate_subscription_story, free_port, stop_group
from webhooks import create_app
from worker.intake import INTAKE_KEY
from worker.pipeline import process_event
from worker.settings import Settings
from worker.store.db import upgrade_database


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


OPERATOR_TOKEN = "op-token-for-tests"


@pytest.fixture
def api(settings: Settings) -> FlaskClient:
    """The operator API with a token, over a store holding one duplicate-subscription story."""
    app = create_app(replace(settings, operator_token=OPERATOR_TOKEN))
    engine = app.config["ENGINE"]
    upgrade_database(engine, settings.data_dir)
    for body in duplicate_subscription_story("ann@example.com"):
        process_event(engine, body)
    return app.test_client()


@pytest.fixture
def queued(redis_url: str):
    """How many accepted webhooks sit on the intake in Redis right now (no worker runs here
    to move them onto Dramatiq)."""
    client = redis.Redis.from_url(redis_url)
    return lambda: client.llen(INTAKE_KEY)


@dataclass(frozen=True)
class WebProcess:
    url: str
    log: Path  # its stdout and stderr


@pytest.fixture(scope="module")
def web_server(web_process: WebProcess) -> str:
    """The base URL of ``web_process``."""
    return web_process.url


@pytest.fixture(scope="module")
def web_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebProcess]:
    """``billing-ops web`` (real gunicorn, exactly as run in production) on a free port, one per
    test module (it takes seconds to boot), once ``/healthz`` answers."""
    tmp_path = tmp_path_factory.mktemp("web")
    port = free_port()
    env = dict(os.environ)
    env.update(
        REDIS_URL=REDIS_URL,
        DATABASE_URL=f"sqlite:///{tmp_path / 'billing-ops.db'}",
        STRIPE_WEBHOOK_SECRET=SECRET,
        BILLING_OPS_DATA_DIR=str(tmp_path / "data"),
        BILLING_OPS_LOG_FORMAT="json",
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = (tmp_path / "web.log").open("wb")
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "billing-ops"), "web", "--bind", f"127.0.0.1:{port}"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail("billing-ops web did not start:\n" + _tail(tmp_path / "web.log"))
            time.sleep(0.1)
    yield WebProcess(url=url, log=tmp_path / "web.log")
    stop_group(process)
    log.close()


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:]
