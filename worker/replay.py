"""Reading Stripe events from files: one object, a JSON array, or JSON Lines."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path


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
