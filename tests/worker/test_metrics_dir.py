"""The Prometheus multiprocess dir: wiped at a start only when no live process uses it, and
each ending process handed to prometheus-client's ``mark_process_dead``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dramatiq
from dramatiq.brokers.stub import StubBroker

from worker.metrics_dir import claim
from worker.middleware import MetricsBookkeeping

HOLDER = (
    "import sys; from pathlib import Path; from worker.metrics_dir import claim; "
    "claim(Path(sys.argv[1])); print('\\nheld', flush=True); sys.stdin.read()"
)


def _files(path: Path) -> list[str]:
    return sorted(p.name for p in path.glob("*.db"))


def test_a_start_on_an_unused_dir_wipes_the_last_runs_files(tmp_path):
    """Nobody uses the dir: the previous run's files go, as prometheus-client asks."""
    (tmp_path / "counter_123.db").write_bytes(b"old")
    assert claim(tmp_path).wiped
    assert _files(tmp_path) == []


def test_a_start_beside_a_live_user_keeps_its_files(tmp_path):
    """A worker tree holds the dir (a real process): a web start joins and deletes nothing;
    once that process is gone, the next start wipes."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        while holder.stdout.readline() != "held\n":  # the lock is held once it says so
            assert holder.poll() is None, "the holder died"
        (tmp_path / "counter_4242.db").write_bytes(b"the live worker's counts")
        joined = claim(tmp_path)
        assert not joined.wiped
        assert _files(tmp_path) == ["counter_4242.db"]
        os.close(joined.lock_fd)
    finally:
        holder.communicate("")
    assert claim(tmp_path).wiped
    assert _files(tmp_path) == []


def test_a_stopping_dramatiq_worker_marks_its_process_dead(tmp_path):
    """A worker process's shutdown removes its live-gauge file, never its counters."""
    pid = os.getpid()
    (tmp_path / f"gauge_livesum_{pid}.db").write_bytes(b"")
    (tmp_path / f"counter_{pid}.db").write_bytes(b"")
    broker = StubBroker(middleware=[MetricsBookkeeping(str(tmp_path))])
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    worker.stop()
    assert _files(tmp_path) == [f"counter_{pid}.db"]
