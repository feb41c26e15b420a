"""`billing-ops serve` as a new user runs it: embedded Redis and SQLite, Ctrl-C stops all."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support import event_body, free_port, sign


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def _processes_using(data_dir: Path) -> list[int]:
    """Pids whose command line or environment names this data dir."""
    needle = str(data_dir).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if (
                needle in (entry / "cmdline").read_bytes()
                or needle in (entry / "environ").read_bytes()
            ):
                status = (entry / "status").read_text()
                if "State:\tZ" not in status:
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.fixture
def served(tmp_path):
    data_dir = tmp_path / "data"
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("REDIS_URL", "DATABASE_URL", "STRIPE_WEBHOOK_SECRET", "OPERATOR_TOKEN")
    }
    env.update(BILLING_OPS_DATA_DIR=str(data_dir), BILLING_OPS_LOG_FORMAT="json")
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "billing-ops"),
            "serve",
            "--port",
            str(port),
            "--web-workers",
            "1",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while _get(f"http://127.0.0.1:{port}/readyz") != 200:
        if process.poll() is not None or time.monotonic() > deadline:
            output = process.stdout.read().decode() if process.stdout else ""
            process.kill()
            pytest.fail(f"serve did not become ready:\n{output[-3000:]}")
        time.sleep(0.2)
    yield process, port, data_dir
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        for pid in _processes_using(data_dir):
            os.kill(pid, signal.SIGKILL)


def test_serve_processes_a_signed_event_and_stops_everything_on_ctrl_c(served):
    """A signed event posted to the printed URL is processed; Ctrl-C leaves no process behind."""
    process, port, data_dir = served
    secret = (data_dir / "webhook_secret").read_text().strip()
    body = event_body("evt_serve_1")
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhooks/stripe",
        data=body.encode(),
        headers={"Stripe-Signature": sign(body, secret), "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.loads(response.read()) == {"received": True, "duplicate": False}
    deadline = time.monotonic() + 30
    status = None
    while time.monotonic() < deadline:
        with sqlite3.connect(data_dir / "billing-ops.db") as db:
            row = db.execute("SELECT status FROM events WHERE id = 'evt_serve_1'").fetchone()
        status = row[0] if row else None
        if status == "processed":
            break
        time.sleep(0.2)
    assert status == "processed"

    os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    assert process.wait(timeout=60) == 0
    output = process.stdout.read().decode()
    assert f"http://127.0.0.1:{port}/webhooks/stripe" in output
    assert secret in output
    assert _processes_using(data_dir) == []
