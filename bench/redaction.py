"""Time per MB of log redaction (``worker.pii.scrub_text``) on adversarial inputs.

Each input is about 1 MiB of text built to make a backtracking pattern work hard: runs of
email local-part characters before an ``@`` with no domain (the input that held a web request
30 s), dotted runs, many ``@``, digit runs with separators (card candidates), long header
values. Linear redaction shows the same seconds per MB at every size; the old email pattern
(kept below for comparison, on small inputs only) grows with the square of the size.

    .venv/bin/python bench/redaction.py              # ~30 s
    .venv/bin/python bench/redaction.py --sizes 65536,1048576 --rounds 5
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from worker.logs import redact  # noqa: E402
from worker.pii import scrub_text  # noqa: E402

MB = 1_000_000


def repeat(chunk: str) -> Callable[[int], str]:
    return lambda size: (chunk * (size // len(chunk) + 1))[:size]


INPUTS: dict[str, Callable[[int], str]] = {
    "evt_ + % run + @x": lambda size: "evt_" + "%" * size + "@x",
    "local run + @x": lambda size: "a" * size + "@x",
    "dotted domain": lambda size: "x@" + repeat("a.")(size),
    "many @": repeat("a@"),
    "@a. chain": repeat("@a."),
    "a@a. chain": repeat("a@a."),
    "spaced digits": repeat("1 "),
    "card-like groups": repeat("4242 "),
    "Luhn-valid cards": repeat("4242424242424242 "),
    "bearer + spaces": lambda size: "Bearer " + " " * size,
    "t= + digits": lambda size: "t=" + "1" * size,
    "JSON event (benign)": repeat(
        '{"id": "evt_1NG8Du2eZvKYlo2CUI79vXWy", "object": "event", "created": 1764000000, '
        '"data": {"object": {"id": "cus_NffrFeUfNV2Hib", "email": "jane.doe@example.com"}}} '
    ),
}
#: The email pattern before the fix, for comparison: quadratic on a run of ``%`` before ``@``.
OLD_EMAIL_RE = re.compile(r"(?<![\w.+-])([A-Za-z0-9._%+-]+)@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")


def seconds(fn: Callable[[], object], rounds: int) -> float:
    """Median wall time of ``rounds`` calls."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="65536,262144,1048576", help="bytes, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    print(f"scrub_text, seconds per MB (median of {args.rounds}), by input size:")
    print(f"{'input':<22}" + "".join(f"{size // 1024:>10} KiB" for size in sizes))
    worst = 0.0
    for name, build in INPUTS.items():
        row = []
        for size in sizes:
            text = build(size)
            per_mb = seconds(lambda text=text: scrub_text(text), args.rounds) / (len(text) / MB)
            worst = max(worst, per_mb)
            row.append(per_mb)
        print(f"{name:<22}" + "".join(f"{value:>14.3f}" for value in row))
    print(f"worst: {worst:.3f} s/MB")

    line = {"event": "event_failed", "event_id": INPUTS["evt_ + % run + @x"](1 << 20)}
    per_line = seconds(lambda: redact(None, "error", dict(line)), args.rounds)
    print(f"one log line carrying the 1 MiB hostile event id: {per_line * 1000:.2f} ms")

    print("\nthe old email pattern on 'evt_ + % run + @x' (seconds, whole input):")
    for size in (4_000, 8_000, 16_000):
        text = INPUTS["evt_ + % run + @x"](size)
        print(f"{size:>8} chars: {seconds(lambda text=text: OLD_EMAIL_RE.sub('', text), 1):.3f}")


if __name__ == "__main__":
    main()
