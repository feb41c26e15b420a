"""Running a real `billing-ops serve` in tests: start it, find its processes, clean up after."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import sign
from worker.broker import EVENTS_QUEUE
from worker.intake import INTAKE_KEY

BILLING_OPS = str(Path(sys.executable).parent / "billing-ops")
#: Variables of the test run that must not leak into a served instance.
_PRIVATE_ENV = ("REDIS_URL", "DATABASE_URL", "STRIPE_WEBHOOK_SECRET", "OPERATOR_TOKEN")


def wait_for(predicate: Callable[[], object], timeout: float, what: str = "condition") -> None:
    """Poll ``predicate`` every 0.1 s until it is truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not reached within {timeout} s"
        time.sleep(0.1)


def join_events(broker: Any, timeout: float = 20) -> None:
    """Wait until a worker's pump has moved every accepted webhook off the intake onto
    Dramatiq (it trims an entry only once enqueued), then until Dramatiq's events queue is
    done: what ``broker.join("events")`` alone meant when the edge enqueued directly."""
    wait_for(lambda: broker.client.llen(INTAKE_KEY) == 0, timeout, "the intake drained")
    broker.join(EVENTS_QUEUE, timeout=int(timeout * 1000))


def http_status(url: str, timeout: float = 2) -> int:
    """The HTTP status of a GET, or 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def post_event(port: int, body: str, secret: str) -> int:
    """POST a signed event to the served webhook URL; the HTTP status (0: no answer)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhooks/stripe",
        data=body.encode(),
        headers={"Stripe-Signature": sign(body, secret), "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, process group) of a live process, from /proc."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1]), int(fields[2])


def children_of(pid: int) -> list[int]:
    """Live (non-zombie) children of ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat and stat[1] == pid and stat[0] != "Z":
                found.append(int(entry.name))
    return sorted(found)


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def processes_using(data_dir: Path) -> list[int]:
    """Live pids whose command line or environment names this data dir."""
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
                stat = _stat(int(entry.name))
                if stat and stat[0] != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


@dataclass
class Served:
    """A running `billing-ops serve` and where it keeps its state."""

    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def secret(self) -> str:
        return (self.data_dir / "webhook_secret").read_text().strip()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def child(self, marker: str) -> int | None:
        """The direct child of serve whose program (a file name among the first 3 words of
        its command line, never a path with the data dir in it) contains ``marker``."""
        for pid in children_of(self.pid):
            if any(marker in Path(word).name for word in cmdline(pid).split()[:3]):
                return pid
        return None

    def dramatiq_workers(self) -> list[int]:
        """The Dramatiq worker processes (children of Dramatiq's main process)."""
        main = self.child("dramatiq")
        return children_of(main) if main else []

    def event_status(self, event_id: str) -> str | None:
        """The event's status in the served SQLite store (None: not stored)."""
        with sqlite3.connect(self.data_dir / "billing-ops.db") as db:
            row = db.execute("SELECT status FROM events WHERE id = ?", (event_id,)).fetchone()
        return row[0] if row else None

    def ready(self) -> bool:
        return http_status(f"http://127.0.0.1:{self.port}/readyz") == 200


def start_serve(
    data_dir: Path,
    port: int,
    *args: str,
    env: dict[str, str] | None = None,
) -> Served:
    """Start `billing-ops serve` (its output to a file next to the data dir)."""
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    full_env = {k: v for k, v in os.environ.items() if k not in _PRIVATE_ENV}
    full_env.update(BILLING_OPS_DATA_DIR=str(data_dir), BILLING_OPS_LOG_FORMAT="json")
    full_env.update(env or {})
    log_path = data_dir.parent / f"serve-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [BILLING_OPS, "serve", "--port", str(port), "--web-workers", "1", *args],
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Served(process=process, port=port, data_dir=data_dir, log_path=log_path)


def kill_everything(served: Served) -> None:
    """SIGKILL serve's session and anything still naming its data dir."""
    for pid in [served.pid, *processes_using(served.data_dir)]:
        with suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
        with suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    if served.process.poll() is None:
        served.process.wait(timeout=10)


@contextmanager
def serving(data_dir: Path, port: int, *args: str, **kwargs: object) -> Iterator[Served]:
    """A ready `serve`; every process it started is killed afterwards, even on failure."""
    served = start_serve(data_dir, port, *args, **kwargs)  # type: ignore[arg-type]
    try:
        deadline = time.monotonic() + 90
        while not served.ready():
            if served.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"serve did not become ready:\n{served.output()[-3000:]}")
            time.sleep(0.2)
        yield served
    finally:
        kill_everything(served)
