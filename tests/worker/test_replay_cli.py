"""`billing-ops replay` as a person and a script run it: the summary on stdout, logs on stderr,
a progress bar only on a terminal, and a file that is not events skipped with a warning."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

from tests.support import FIXTURES

SCENARIO = FIXTURES / "scenarios" / "accidental_duplicate_subscription"
#: The summary line: events by status, then the cases and the closing clock run.
SUMMARY = re.compile(
    r"^replayed (\d+) events \((\d+) processed\); cases: (\d+) opened, (\d+) updated, "
    r"(\d+) resolved; clock evaluated \d+ people$"
)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("BILLING_OPS_", "STRIPE_"))}
    base.pop("DATABASE_URL", None)
    base.pop("REDIS_URL", None)
    return {**base, "BILLING_OPS_DATA_DIR": str(tmp_path / "data"), **extra}


def replay(tmp_path: Path, *paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker", "replay", *map(str, paths)],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_summary_alone_goes_to_stdout_and_logs_to_stderr(tmp_path):
    """Piped: stdout is one summary line (events, cases opened/updated); stderr holds only
    JSON log lines, and no progress bar frames."""
    result = replay(tmp_path, SCENARIO)
    assert result.returncode == 0, result.stderr
    events = len([p for p in SCENARIO.glob("*.json") if p.name != "expected.json"])
    (line,) = result.stdout.splitlines()
    match = SUMMARY.match(line)
    assert match, line
    assert match.groups()[:3] == (str(events), str(events), "1")
    logged = [json.loads(line)["event"] for line in result.stderr.splitlines()]
    assert logged.count("event_processed") == events
    assert "replaying" not in result.stderr


def test_a_file_that_is_not_events_is_skipped_with_a_warning(tmp_path):
    """A stray JSON file in the folder is named in one warning; the events are replayed."""
    folder = tmp_path / "events"
    folder.mkdir()
    for path in SCENARIO.glob("0*.json"):
        (folder / path.name).write_text(path.read_text())
    (folder / "package.json").write_text('{"name": "not-an-event"}')
    (folder / "broken.jsonl").write_text("{not json\n")
    result = replay(tmp_path, folder)
    assert result.returncode == 0, result.stderr
    assert SUMMARY.match(result.stdout.strip())
    warnings = [
        doc
        for doc in map(json.loads, result.stderr.splitlines())
        if doc["event"] == "replay_file_skipped"
    ]
    assert sorted(Path(w["path"]).name for w in warnings) == ["broken.jsonl", "package.json"]
    assert all(w["level"] == "warning" and w["reason"] for w in warnings)


def test_a_terminal_gets_a_progress_bar(tmp_path):
    """With stderr on a terminal, the bar is drawn there; stdout still gets the summary."""
    screen, device = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "worker", "replay", str(SCENARIO)],
            env=_env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=device,
            text=True,
        )
        os.close(device)
        stdout, _ = process.communicate(timeout=120)
        drawn = b""
        while True:
            try:
                chunk = os.read(screen, 65536)
            except OSError:  # the terminal's other end is closed: all read
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(screen)
    assert process.returncode == 0
    assert SUMMARY.match(stdout.strip())
    assert b"replaying" in drawn and b"100%" in drawn
