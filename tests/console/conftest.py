"""The console served by the real app factory on a loopback port, over a store that holds the
replayed scenario folder, and Debian's chromium driven by Playwright."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine
from werkzeug.serving import make_server

from tests.conftest import IN_CI
from tests.console.browser import LAUNCH_ARGS, ensure_chromium
from tests.support import FIXTURES, SECRET, free_port
from webhooks import create_app
from worker.replay import expand_paths, read_events, replay_events
from worker.settings import Settings
from worker.store.db import upgrade_database

TOKEN = "op-token-for-tests"
SCENARIOS = FIXTURES / "scenarios"
#: Where the test run leaves the screenshots the README shows.
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
#: Replayed up to this instant, so the screenshots show the same ages on every run.
REPLAY_NOW = datetime(2026, 3, 1, tzinfo=UTC)


def replay_scenarios(engine: Engine, settings: Settings) -> None:
    """``billing-ops replay tests/fixtures/scenarios``, in this process."""
    bodies = [body for path in expand_paths([SCENARIOS]) for body in read_events(path)]
    replay_events(engine, bodies, config=settings.rules, now=REPLAY_NOW)


@pytest.fixture
def console_settings(tmp_path: Path, redis_url: str, sqlite_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path,
        webhook_secrets=(SECRET,),
        database_url=sqlite_url,
        redis_url=redis_url,
        operator_token=TOKEN,
        log_format="json",
    )


@pytest.fixture
def console_app(console_settings: Settings) -> Flask:
    """The app as ``billing-ops web`` builds it, its store holding every scenario's cases."""
    app = create_app(console_settings)
    upgrade_database(app.config["ENGINE"], console_settings.data_dir)
    replay_scenarios(app.config["ENGINE"], console_settings)
    return app


@dataclass(frozen=True)
class Site:
    url: str
    app: Flask

    @property
    def engine(self) -> Engine:
        return self.app.config["ENGINE"]


@contextmanager
def serve(app: Flask) -> Iterator[Site]:
    """``app`` on a real HTTP server (werkzeug, threaded) on a free loopback port."""
    app.config["CONSOLE_REFRESH_SECONDS"] = 1  # the in-place refresh, quickly
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Site(url=f"http://127.0.0.1:{server.server_port}", app=app)
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture
def site(console_app: Flask) -> Iterator[Site]:
    with serve(console_app) as running:
        yield running


@pytest.fixture(scope="session")
def chromium() -> str:
    path = ensure_chromium()
    if path is None:
        message = "chromium is missing and `apt-get install -y chromium` could not install it"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def playwright() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def page(playwright: Any, chromium: str, tmp_path: Path) -> Iterator[Any]:
    """A fresh browser profile per test, allowed to use the clipboard."""
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path / "chromium-profile"),
        executable_path=chromium,
        args=LAUNCH_ARGS,
        headless=True,
        viewport={"width": 1400, "height": 900},
    )
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    context.set_default_timeout(15_000)
    page = context.pages[0] if context.pages else context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.problems = problems  # CSP violations and script errors, for the tests to check
    yield page
    context.close()


def sign_in(page: Any, site: Site, token: str = TOKEN) -> None:
    page.goto(site.url + "/")
    page.fill("#token", token)
    page.click("button[type=submit]")
