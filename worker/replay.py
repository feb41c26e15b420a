"""Replaying Stripe events from files (one object, a JSON array, or JSON Lines) in-process.

Each event is evaluated at its own time, as live delivery did; the clock then runs once at
the wall-clock instant given, so what time alone changed since (a trial in its last days, a
card past its expiry) is there too, and the result is the state live operation has by then.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import structlog
from sqlalchemy import Engine

from rules import RulesConfig
from worker.clock.run import ClockRun, run_clock
from worker.pipeline import process_batch


class ReplayInputError(ValueError):
    """Raised when a replay file holds something that is not Stripe event JSON."""


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files as given; folders expand to their ``*.json`` / ``*.jsonl`` files, sorted."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in (".json", ".jsonl")))
        else:
            files.append(path)
    return [f for f in files if f.name != "expected.json"]


def read_events(path: Path) -> Iterator[str]:
    """Each event in ``path`` as a compact JSON string.

    JSON Lines are read a line at a time, so a replay of a large export holds one event in
    memory, not the file; a JSON array or a single (pretty-printed) object is read whole."""
    if _is_json_lines(path):
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if line.strip():
                    try:
                        yield _event_json(json.loads(line), path)
                    except json.JSONDecodeError as error:
                        raise ReplayInputError(f"{path}:{number}: not JSON ({error.msg})") from None
        return
    text = path.read_text(encoding="utf-8").strip()
    if not text:
        return
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as error:
        raise ReplayInputError(f"{path}:1: not JSON ({error.msg})") from None
    for item in doc if isinstance(doc, list) else [doc]:
        yield _event_json(item, path)


def _is_json_lines(path: Path) -> bool:
    """Whether the file's first non-blank line is a whole JSON value of its own (JSON Lines),
    rather than the start of an array or of a pretty-printed object."""
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                try:
                    json.loads(line)
                except json.JSONDecodeError:
                    return False
                return not line.lstrip().startswith("[")
    return False


@dataclass(frozen=True)
class SkippedFile:
    """A file given to replay that holds no readable Stripe events, and why."""

    path: Path
    reason: str


def check_files(files: Iterable[Path]) -> tuple[list[Path], list[SkippedFile], int]:
    """The files that hold only Stripe events, those skipped (and why), and how many events
    the kept ones hold. Each file is read once here without keeping its events (JSON Lines
    stream), so a stray ``package.json`` in a folder is skipped whole before anything is
    processed instead of stopping the replay half-way."""
    kept: list[Path] = []
    skipped: list[SkippedFile] = []
    count = 0
    for path in files:
        try:
            in_file = sum(1 for _ in read_events(path))
        except ReplayInputError as error:
            skipped.append(SkippedFile(path, str(error)))
        except (OSError, UnicodeDecodeError) as error:
            skipped.append(SkippedFile(path, f"{path}: cannot read ({error})"))
        else:
            kept.append(path)
            count += in_file
    return kept, skipped, count


def events_of(files: Iterable[Path]) -> Iterator[str]:
    """The events of ``files``, in order, one at a time."""
    for path in files:
        yield from read_events(path)


def _event_json(item: object, path: Path) -> str:
    if not (isinstance(item, dict) and item.get("object") == "event" and "id" in item):
        raise ReplayInputError(f"{path}: holds something that is not a Stripe event object")
    return json.dumps(item, separators=(",", ":"))


@dataclass(frozen=True)
class ReplaySummary:
    """How many events ended in each status, the cases they (and the closing clock run)
    opened, updated and resolved, and what the clock run did."""

    counts: dict[str, int]
    clock: ClockRun
    cases_opened: frozenset[int] = frozenset()
    cases_updated: frozenset[int] = frozenset()
    cases_resolved: frozenset[int] = frozenset()

    @property
    def events(self) -> int:
        return sum(self.counts.values())

    def line(self) -> str:
        """The one-line summary ``billing-ops replay`` prints on stdout."""
        statuses = ", ".join(f"{n} {status}" for status, n in sorted(self.counts.items()))
        return (
            f"replayed {self.events} events ({statuses or 'none'}); cases: "
            f"{len(self.cases_opened)} opened, {len(self.cases_updated)} updated, "
            f"{len(self.cases_resolved)} resolved; clock evaluated "
            f"{len(self.clock.evaluated)} people"
        )


def replay_events(
    engine: Engine, bodies: Iterable[str], *, config: RulesConfig, now: datetime
) -> ReplaySummary:
    """Process each event at its own time, in order, then run the clock once at ``now``.

    Events go through ``process_batch`` (a few hundred per transaction, each exactly as a
    worker would process it). No notifications are planned: old events must not email
    customers.
    """
    counts: dict[str, int] = {}
    opened: set[int] = set()
    updated: set[int] = set()
    resolved: set[int] = set()
    for outcome in process_batch(engine, bodies, config=config):
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
        opened.update(outcome.cases_opened)
        updated.update(outcome.cases_updated)
        resolved.update(outcome.cases_resolved)
    structlog.contextvars.clear_contextvars()  # the clock's logs name no replayed event
    clock = run_clock(engine, now, config=config)
    opened.update(clock.cases_opened)
    updated.update(clock.cases_updated)
    resolved.update(clock.cases_resolved)
    return ReplaySummary(
        counts=counts,
        clock=clock,
        cases_opened=frozenset(opened),
        cases_updated=frozenset(updated - opened),  # a case opened here counts as opened
        cases_resolved=frozenset(resolved),
    )
