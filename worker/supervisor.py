"""Keep `serve`'s child processes alive, and stop each one with everything it started.

Every child runs in its own session, so its process group holds all it forked (gunicorn's
workers, Dramatiq's worker processes). A stop or a restart signals the group, not just its
leader: nothing is left behind when a leader dies first or a worker ignores its parent.
A child that dies is started again after a short backoff; one that keeps dying
(``CRASH_LOOP_EXITS`` exits within ``CRASH_LOOP_WINDOW_SECONDS``) is a crash loop, and the
supervisor gives up rather than restart it forever.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import structlog

log = structlog.get_logger()

CRASH_LOOP_EXITS = 5
CRASH_LOOP_WINDOW_SECONDS = 60.0
#: First restart after half a second, doubling up to 8 s while a child keeps dying.
FIRST_RESTART_DELAY_SECONDS = 0.5
MAX_RESTART_DELAY_SECONDS = 8.0
#: How long a group gets to stop after SIGTERM before it is SIGKILLed.
STOP_TIMEOUT_SECONDS = 10.0
#: A dead leader's leftovers get less: what they were doing is redelivered anyway.
LEFTOVER_TIMEOUT_SECONDS = 3.0
#: A live child that fails its health check this long is restarted like a dead one: Dramatiq's
#: main process can outlive its workers without exiting (Bogdanp/dramatiq#693, its log
#: watcher blocked on a pipe), leaving a tree that takes no message.
UNHEALTHY_GRACE_SECONDS = 30.0
_POLL_SECONDS = 0.05

Spawn = Callable[[], "subprocess.Popen[bytes]"]


class CrashLoop(Exception):
    """A child exited too often in too little time; the message says which and how."""


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid``."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: all we can tell is whether the group exists
        try:
            os.killpg(pgid, 0)
        except OSError:
            return []
        return [pgid]
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def child_pids(pid: int) -> list[int] | None:
    """Live (non-zombie) children of ``pid``, from Linux's ``/proc/PID/task/*/children``;
    None when that cannot be read."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
        children = [int(c) for task in tasks for c in (task / "children").read_text().split()]
    except OSError:
        return None
    return [child for child in children if _state(child) not in (None, "Z")]


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def stop_group(
    process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT_SECONDS
) -> list[int]:
    """Stop ``process`` (a session leader) and every process of its group; return their pids.

    A live leader gets SIGTERM and passes it on (gunicorn and Dramatiq both do); leftovers of a
    dead leader get SIGTERM themselves. Whatever is still there after ``timeout`` is SIGKILLed.
    """
    pgid = process.pid
    seen = set(group_members(pgid)) | {pgid}
    if process.poll() is None:
        process.terminate()
        _signal_group(pgid, signal.SIGCONT)  # a stopped leader must run to hear it
    else:
        timeout = min(timeout, LEFTOVER_TIMEOUT_SECONDS)
        _signal_group(pgid, signal.SIGTERM)
        _signal_group(pgid, signal.SIGCONT)
    if not _wait_group_gone(process, timeout, seen):
        _signal_group(pgid, signal.SIGKILL)
        _wait_group_gone(process, STOP_TIMEOUT_SECONDS, seen)
        log.warning("process_group_killed", pgid=pgid, after_seconds=timeout)
    return sorted(seen)


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def _wait_group_gone(process: subprocess.Popen[bytes], timeout: float, seen: set[int]) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        process.poll()  # reap the leader, or it stays a member as a zombie
        members = group_members(process.pid)
        seen.update(members)
        if process.returncode is not None and not members:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_SECONDS)


@dataclass
class Child:
    """One supervised process: how to start it, how to tell it works, how often it died lately.

    ``healthy`` (given the pid) is asked while the process runs; failing it for
    ``UNHEALTHY_GRACE_SECONDS`` counts as a death.
    """

    name: str
    spawn: Spawn
    healthy: Callable[[int], bool] | None = None
    unhealthy_since: float | None = None
    process: subprocess.Popen[bytes] | None = None
    exits: deque[float] = field(default_factory=deque)
    restart_at: float | None = None
    last_code: int | None = None


@dataclass
class Supervisor:
    """Start children, restart the dead ones with backoff, stop them all in order.

    ``on_gone`` receives the pids of a group that has just ended (to clean per-process state,
    e.g. Prometheus multiprocess files).
    """

    children: list[Child]
    on_gone: Callable[[Iterable[int]], None] = lambda pids: None

    def start(self) -> None:
        """Start every child not started yet (one may be handed over already running)."""
        for child in self.children:
            if child.process is None:
                child.process = child.spawn()

    def check(self, now: float) -> None:
        """Restart what died (after its backoff); ``CrashLoop`` for a child that keeps dying."""
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.restart_at = None
                    child.process = child.spawn()
                    log.info("child_restarted", child=child.name, pid=child.process.pid)
                continue
            if child.process is None:
                continue
            if child.process.poll() is None:
                if not self._still_healthy(child, now):
                    log.warning(
                        "child_unhealthy", child=child.name, pid=child.process.pid,
                        after_seconds=UNHEALTHY_GRACE_SECONDS,
                    )  # fmt: skip
                    self._died(child, now)
                continue
            log.warning(
                "child_exited", child=child.name, pid=child.process.pid,
                code=child.process.returncode,
            )  # fmt: skip
            self._died(child, now)

    def _still_healthy(self, child: Child, now: float) -> bool:
        assert child.process is not None
        if child.healthy is None or child.healthy(child.process.pid):
            child.unhealthy_since = None
            return True
        if child.unhealthy_since is None:
            child.unhealthy_since = now
        return now - child.unhealthy_since < UNHEALTHY_GRACE_SECONDS

    def _died(self, child: Child, now: float) -> None:
        assert child.process is not None
        self.on_gone(stop_group(child.process))
        child.last_code = child.process.returncode
        child.unhealthy_since = None
        child.exits.append(now)
        while child.exits and child.exits[0] < now - CRASH_LOOP_WINDOW_SECONDS:
            child.exits.popleft()
        if len(child.exits) >= CRASH_LOOP_EXITS:
            raise CrashLoop(
                f"the {child.name} process exited {len(child.exits)} times within "
                f"{CRASH_LOOP_WINDOW_SECONDS:.0f} s (crash loop; last exit code "
                f"{child.last_code})"
            )
        delay = min(
            FIRST_RESTART_DELAY_SECONDS * 2 ** (len(child.exits) - 1), MAX_RESTART_DELAY_SECONDS
        )
        child.restart_at = now + delay

    def stop(self) -> None:
        """Stop every child, in the order given, each with its whole process group.

        Nothing may interrupt this (a log line to a terminal that hung up raises): every
        group is stopped first, the bookkeeping comes after."""
        ended = []
        for child in self.children:
            child.restart_at = None
            if child.process is None:
                continue
            try:
                ended.append(stop_group(child.process))
            except OSError:  # e.g. its log line to a hung-up terminal; go on with the next
                ended.append([child.process.pid])
        for pids in ended:
            self.on_gone(pids)
