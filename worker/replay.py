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
from worker.pipeline import process_event


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
    """Each event in ``path`` as a compact JSON string."""
    text = path.read_text(encoding="utf-8").strip()
    if not text:
        return
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    yield _event_json(json.loads(line), path)
                except json.JSONDecodeError as error:
                    raise ReplayInputError(f"{path}:{number}: not JSON ({error.msg})") from None
        return
    for item in doc if isinstance(doc, list) else [doc]:
        yield _event_json(item, path)


def _event_json(item: object, path: Path) -> str:
    if not (isinstance(item, dict) and item.get("object") == "event" and "id" in item):
        raise ReplayInputError(f"{path}: holds something that is not a Stripe event object")
    return json.dumps(item, separators=(",", ":"))


@dataclass(frozen=True)
class ReplaySummary:
    """How many events ended in each status, and what the closing clock run did."""

    counts: dict[str, int]
    clock: ClockRun


def replay_events(
    engine: Engine, bodies: Iterable[str], *, config: RulesConfig, now: datetime
) -> ReplaySummary:
    """Process each event at its own time, then run the clock once at ``now``.

    No notifications are planned: old events must not email customers.
    """
    counts: dict[str, int] = {}
    for body in bodies:
        status = process_event(engine, body, config=config).status
        counts[status] = counts.get(status, 0) + 1
    structlog.contextvars.clear_contextvars()  # the clock's logs name no replayed event
    return ReplaySummary(counts=counts, clock=run_clock(engine, now, config=config))
