"""`billing-ops serve` under real signals: dead children come back, stops leave no orphan."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import socket
import sqlite3
import subprocess
import termios
import threading
import time
import urllib.request

import pytest
import redis

from tests.serving import (
    BILLING_OPS,
    Served,
    http_status,
    kill_everything,
    processes_using,
    serving,
    start_serve,
    wait_for,
)
from tests.serving import (
    post_event as post,
)
from tests.support import event_body, free_port
from worker.embedded_redis import find_redis_server


def _processed(served, event_id: str) -> bool:
    return served.event_status(event_id) == "processed"


def test_a_killed_worker_process_is_replaced_while_web_keeps_answering(tmp_path):
    """kill -9 of a Dramatiq worker process: serve stays up, web answers, a new worker runs."""
    with serving(tmp_path / "data", free_port()) as served:
        wait_for(served.dramatiq_workers, 30, "a Dramatiq worker process")
        [victim] = served.dramatiq_workers()
        os.kill(victim, signal.SIGKILL)

        assert post(served.port, event_body("evt_after_kill"), served.secret) == 200
        wait_for(lambda: served.dramatiq_workers() not in ([], [victim]), 60, "a new worker")
        wait_for(lambda: _processed(served, "evt_after_kill"), 60, "event processed")
        assert served.process.poll() is None


def test_a_dramatiq_tree_left_without_workers_is_restarted(tmp_path):
    """Dramatiq's main process frozen (SIGSTOP) when its worker is SIGKILLed, so it never
    exits: serve notices the tree has no worker, restarts it, and events are processed."""
    with serving(tmp_path / "data", free_port()) as served:
        wait_for(served.dramatiq_workers, 30, "a Dramatiq worker process")
        main = served.child("dramatiq")
        assert main is not None
        [victim] = served.dramatiq_workers()
        os.kill(main, signal.SIGSTOP)
        os.kill(victim, signal.SIGKILL)

        assert post(served.port, event_body("evt_after_hang"), served.secret) == 200
        wait_for(lambda: served.child("dramatiq") not in (None, main), 90, "a new Dramatiq")
        wait_for(lambda: _processed(served, "evt_after_hang"), 60, "event processed")
        assert served.process.poll() is None


def test_a_killed_embedded_redis_restarts_from_its_append_only_file(tmp_path):
    """kill -9 of the embedded redis-server: it comes back with the queued message, processed."""
    with serving(tmp_path / "data", free_port()) as served:
        wait_for(served.dramatiq_workers, 30, "a Dramatiq worker process")
        workers = served.dramatiq_workers()
        for pid in workers:  # hold consumption so the message waits in Redis
            os.kill(pid, signal.SIGSTOP)
        try:
            assert post(served.port, event_body("evt_in_aof"), served.secret) == 200
            old_redis = served.child("redis-server")
            assert old_redis is not None
            os.kill(old_redis, signal.SIGKILL)
            wait_for(
                lambda: served.child("redis-server") not in (None, old_redis), 30, "a new redis"
            )
        finally:
            for pid in workers:
                os.kill(pid, signal.SIGCONT)
        wait_for(lambda: _processed(served, "evt_in_aof"), 60, "queued event processed")
        wait_for(served.ready, 30, "ready again")
        assert served.process.poll() is None


def test_a_killed_gunicorn_master_is_restarted(tmp_path):
    """kill -9 of gunicorn's master: serve starts a new one on the same port."""
    with serving(tmp_path / "data", free_port()) as served:
        master = served.child("gunicorn")
        assert master is not None
        os.kill(master, signal.SIGKILL)
        wait_for(lambda: served.child("gunicorn") not in (None, master), 30, "a new master")
        wait_for(served.ready, 60, "ready again")
        assert post(served.port, event_body("evt_after_web_kill"), served.secret) == 200
        assert served.process.poll() is None


def test_a_crash_looping_worker_stops_serve_with_one_line(tmp_path):
    """Dramatiq killed as soon as it starts, again and again: after 5 exits within 60 s serve
    stops everything and says why in one line."""
    with serving(tmp_path / "data", free_port()) as served:
        deadline = time.monotonic() + 120
        killed: set[int] = set()
        while served.process.poll() is None:
            assert time.monotonic() < deadline, "serve kept restarting a crash-looping worker"
            main = served.child("dramatiq")
            if main is not None and main not in killed:
                os.kill(main, signal.SIGKILL)
                killed.add(main)
            time.sleep(0.05)
        assert served.process.returncode != 0
        lines = [line for line in served.output().splitlines() if "crash loop" in line]
        assert len(lines) == 1, served.output()[-3000:]
        assert "worker" in lines[0] and "5 times" in lines[0]
        wait_for(lambda: processes_using(served.data_dir) == [], 30, "no process left")


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_serve_stops_everything_it_started(tmp_path, signum):
    """SIGHUP (a closed terminal), SIGTERM or SIGINT to serve alone: no process is left."""
    with serving(tmp_path / "data", free_port()) as served:
        wait_for(served.dramatiq_workers, 30, "a Dramatiq worker process")
        os.kill(served.pid, signum)
        served.process.wait(timeout=60)
        wait_for(lambda: processes_using(served.data_dir) == [], 30, "no process left")


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of this test's own on a free loopback port, to stop at will."""
    port = free_port()
    process = subprocess.Popen(
        [str(find_redis_server()), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=port, socket_connect_timeout=1)
    try:
        wait_for(lambda: _pings(client), 10, "redis up")
        yield process, f"redis://127.0.0.1:{port}/0"
    finally:
        process.kill()
        process.wait()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def test_stopping_serve_while_redis_is_down_leaves_no_orphan(tmp_path, own_redis):
    """A worker stuck acking into a dead Redis: SIGTERM to serve still ends every process."""
    redis_process, url = own_redis
    data_dir = tmp_path / "data"
    with serving(data_dir, free_port(), env={"REDIS_URL": url}) as served:
        queue = redis.Redis.from_url(url)
        holder = sqlite3.connect(data_dir / "billing-ops.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # the worker will wait for the write lock
        try:
            assert post(served.port, event_body("evt_unackable"), served.secret) == 200
            wait_for(lambda: queue.keys("dramatiq:__acks__.*.events"), 30, "message taken")
            redis_process.kill()
            redis_process.wait()
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        wait_for(lambda: _processed(served, "evt_unackable"), 60, "processed, ack pending")
        os.kill(served.pid, signal.SIGTERM)
        served.process.wait(timeout=60)
        wait_for(lambda: processes_using(data_dir) == [], 30, "no process left")


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def test_a_second_serve_in_the_same_data_dir_refuses_at_once(tmp_path):
    """The second serve says who runs there and exits; the first keeps its metrics."""
    data_dir = tmp_path / "data"
    with serving(data_dir, free_port()) as first:
        assert post(first.port, event_body("evt_counted"), first.secret) == 200
        assert "billing_ops_webhooks_accepted_total 1.0" in _metrics(first.port)

        second = start_serve(data_dir, free_port())
        try:
            assert second.process.wait(timeout=30) != 0
        finally:
            kill_everything(second) if second.process.poll() is None else None
        output = second.output().strip().splitlines()
        assert output == [f"Error: billing-ops is already running in {data_dir} (pid {first.pid})"]
        assert "billing_ops_webhooks_accepted_total 1.0" in _metrics(first.port)
        assert first.ready()


def _run_serve(tmp_path, port: int, env: dict[str, str] | None = None):
    served = start_serve(tmp_path / "data", port, env=env)
    try:
        code = served.process.wait(timeout=30)
    finally:
        kill_everything(served)
    return code, served.output()


def test_a_port_in_use_fails_at_once_naming_the_port_and_the_option(tmp_path):
    """--port already taken: one line naming it and --port, before any banner."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, output = _run_serve(tmp_path, port)
    assert code != 0
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert str(port) in lines[0] and "--port" in lines[0]
    assert "running" not in output


def test_an_unreachable_redis_url_fails_in_one_line(tmp_path):
    """REDIS_URL pointing at nothing: one line saying Redis is unreachable, non-zero exit."""
    code, output = _run_serve(tmp_path, free_port(), env={"REDIS_URL": "redis://127.0.0.1:1/0"})
    assert code != 0
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert "unreachable" in lines[0] and "redis://127.0.0.1:1/0" in lines[0]
    assert "running" not in output


class _Terminal:
    """A pty whose screen end is read continuously (a full one would block serve's writes)
    and closed on ``hang_up()``, from the reading thread itself."""

    def __init__(self) -> None:
        self.screen, self.device = pty.openpty()
        self._closing = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._closing.is_set():
            ready, _, _ = select.select([self.screen], [], [], 0.1)
            if ready:
                try:
                    os.read(self.screen, 65536)
                except OSError:
                    break
        os.close(self.screen)

    def hang_up(self) -> None:
        self._closing.set()
        self._reader.join(timeout=5)


def test_closing_the_terminal_of_serve_stops_everything(tmp_path):
    """serve on a real terminal (a pty it controls): closing the terminal, as an SSH logout
    does, hangs it up; serve stops every process it started."""
    data_dir, port = tmp_path / "data", free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(BILLING_OPS_DATA_DIR=str(data_dir), BILLING_OPS_LOG_FORMAT="json")
    terminal = _Terminal()
    process = subprocess.Popen(
        [BILLING_OPS, "serve", "--port", str(port), "--web-workers", "1"],
        stdin=terminal.device, stdout=terminal.device, stderr=terminal.device, env=env,
        start_new_session=True,
        preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),  # the pty is its terminal
    )  # fmt: skip
    os.close(terminal.device)
    try:
        wait_for(lambda: http_status(f"http://127.0.0.1:{port}/readyz") == 200, 90, "ready")
        terminal.hang_up()
        process.wait(timeout=60)
        wait_for(lambda: processes_using(data_dir) == [], 30, "no process left")
    finally:
        kill_everything(Served(process, port, data_dir, tmp_path / "unused.log"))
