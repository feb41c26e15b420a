"""`billing-ops replay` in-process: events per second and peak memory, at two file sizes.

Generates a quarter of a SaaS (``bench/saas.py``) as a JSON Lines file, runs the real command
``billing-ops replay FILE`` on a fresh data dir (SQLite, the embedded default; or
``--database-url``), and reads the child's peak resident memory from ``wait4`` (maxrss). The
rate is events over the command's wall time, start-up and migrations included (under a second
here), and over the replay phase alone when the command says how long it took. A second file
``--scale`` times larger shows whether memory grows with the file.

    .venv/bin/python bench/replay.py                    # 7,632 events, then 3x
    .venv/bin/python bench/replay.py --scale 1          # one size only
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from machine import describe  # noqa: E402
from saas import REPLAY_CUSTOMERS, quarter  # noqa: E402

BILLING_OPS = str(Path(sys.executable).parent / "billing-ops")


def run_once(workdir: Path, customers: int, database_url: str | None) -> dict[str, float]:
    events = quarter(customers)
    path = workdir / f"quarter-{customers}.jsonl"
    path.write_text("".join(body + "\n" for body in events))
    data_dir = workdir / f"data-{customers}"
    env = {**os.environ, "BILLING_OPS_DATA_DIR": str(data_dir), "BILLING_OPS_LOG_FORMAT": "json"}
    env.pop("DATABASE_URL", None)
    if database_url:
        env["DATABASE_URL"] = database_url
    log = workdir / f"replay-{customers}.log"
    started = time.monotonic()
    with log.open("wb") as out:
        child = subprocess.Popen([BILLING_OPS, "replay", str(path)], env=env, stdout=out,
                                 stderr=subprocess.STDOUT)  # fmt: skip
        _, status, usage = os.wait4(child.pid, 0)
    wall = time.monotonic() - started
    if status != 0:
        sys.stderr.write(log.read_text()[-3000:])
        raise SystemExit(f"billing-ops replay exited with status {status}")
    summary = [line for line in log.read_text().splitlines() if line.startswith("replayed")]
    return {
        "events": len(events),
        "bytes": path.stat().st_size,
        "wall_s": wall,
        "rate": len(events) / wall,
        "maxrss_mb": usage.ru_maxrss / 1024,
        "summary": summary[-1] if summary else "",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=REPLAY_CUSTOMERS)
    parser.add_argument("--scale", type=int, default=3, help="second run: this many x customers")
    parser.add_argument("--database-url", help="default: SQLite in a fresh data dir")
    args = parser.parse_args()
    print(describe())
    workdir = Path(tempfile.mkdtemp(prefix="billing-ops-replay-"))
    try:
        sizes = [args.customers] + ([args.customers * args.scale] if args.scale > 1 else [])
        for customers in sizes:
            if args.database_url and customers != sizes[0]:
                print("(a second size on one --database-url would replay into a full store)")
                break
            r = run_once(workdir, customers, args.database_url)
            print(
                f"replay {r['events']:,} events ({r['bytes'] / 1e6:.1f} MB file): "
                f"{r['wall_s']:.1f} s, {r['rate']:,.0f} events/s, peak RSS {r['maxrss_mb']:.0f} MB"
                f"  [{r['summary']}]"
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
