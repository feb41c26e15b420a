"""Fault run: signed events into a real `billing-ops serve`, a worker and Redis killed mid-way.

Reproduces issue 9's accounting run. One `billing-ops serve` (embedded Redis, SQLite unless
``--database-url``) on a free loopback port; ``--events`` signed events, each a past-due
subscription of its own customer (so each opens one ``failed_renewal`` case), posted by
``--concurrency`` threads that retry a non-200 answer the way Stripe does (with backoff, bounded).
Mid-way (after a third of the events are acknowledged) one Dramatiq worker process is SIGKILLed;
after two thirds, the embedded redis-server is SIGKILLed and serve's supervisor restarts it
from its append-only file. Then the script waits (bounded by ``--drain-timeout``) for every
acknowledged event to be processed or failed, and prints:

* acked: events answered 200 (at least once; a retry after a lost answer counts once);
* stored / processed / failed: of those, rows in the store, and their final status;
* processed twice: events with more than one ``event_processed`` log line from the workers,
  and failed_renewal cases beyond one per processed event (both must be 0);
* time to drain: from the last 200 to the last acknowledged event done;
* leftovers: processes still naming the data dir after serve is stopped (must be 0).

Only 127.0.0.1 is contacted; every loop is bounded; serve is stopped (SIGTERM, then SIGKILL of
whatever is left) on exit, Ctrl-C included.

    .venv/bin/python bench/faults.py                 # 3,000 events, ~2-4 minutes here
    .venv/bin/python bench/faults.py --events 300    # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests' helpers: signing, event shapes, serve's processes

from sqlalchemy import func, select  # noqa: E402

from tests.serving import (  # noqa: E402
    Served,
    children_of,
    cmdline,
    kill_everything,
    processes_using,
    start_serve,
)
from tests.support import envelope, free_port, sign, subscription  # noqa: E402
from worker.store.db import make_engine  # noqa: E402
from worker.store.tables import CaseRow, EventRow  # noqa: E402

T0 = 1_764_000_000
#: A post is retried for this long at most (Stripe retries for days; a bench must end).
POST_GIVE_UP_SECONDS = 120.0


@dataclass
class Tally:
    """What the posting threads saw, shared under a lock."""

    acked: set[str] = field(default_factory=set)
    answers: Counter[int] = field(default_factory=Counter)
    given_up: list[str] = field(default_factory=list)
    last_ack: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


def event_bodies(count: int) -> list[tuple[str, str]]:
    """``count`` events, each a past-due subscription of its own customer."""
    bodies = []
    for index in range(count):
        event_id = f"evt_fault_{index:06d}"
        sub = subscription(
            f"sub_fault_{index:06d}", f"cus_fault_{index:06d}", created=T0, status="past_due"
        )
        bodies.append((event_id, envelope(event_id, "customer.subscription.updated", sub, T0)))
    return bodies


def post_until_acked(url: str, secret: str, event_id: str, body: str, tally: Tally) -> None:
    """POST like Stripe: a fresh signature per attempt, retry non-200 with backoff."""
    delay, deadline = 0.1, time.monotonic() + POST_GIVE_UP_SECONDS
    while time.monotonic() < deadline:
        request = urllib.request.Request(
            url,
            data=body.encode(),
            headers={"Stripe-Signature": sign(body, secret), "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        except OSError:
            status = 0  # no answer (connection refused or reset)
        with tally.lock:
            tally.answers[status] += 1
            if status == 200:
                tally.acked.add(event_id)
                tally.last_ack = time.monotonic()
                return
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
    with tally.lock:
        tally.given_up.append(event_id)


def dramatiq_worker(served: Served) -> int | None:
    for pid in children_of(served.pid):
        if "dramatiq" in cmdline(pid):
            workers = children_of(pid)
            return workers[0] if workers else None
    return None


def redis_server(served: Served) -> int | None:
    return next((p for p in children_of(served.pid) if "redis-server" in cmdline(p)), None)


def inject_faults(served: Served, tally: Tally, total: int, log: list[str]) -> None:
    """SIGKILL a worker after a third of the events are acked, Redis after two thirds."""
    start = time.monotonic()

    def wait_acked(count: int) -> bool:
        while len(tally.acked) < count:
            if time.monotonic() - start > POST_GIVE_UP_SECONDS * 2:
                return False
            time.sleep(0.02)
        return True

    for fraction, name, find in (
        (1 / 3, "worker", dramatiq_worker),
        (2 / 3, "redis", redis_server),
    ):
        if not wait_acked(int(total * fraction)):
            log.append(f"{name}: not killed (posting stalled)")
            return
        pid = find(served)
        if pid is None:
            log.append(f"{name}: no process found to kill")
            continue
        os.kill(pid, signal.SIGKILL)
        log.append(f"{name} pid {pid} SIGKILLed after {len(tally.acked)} acks")


def processing_log(served: Served) -> tuple[Counter[str], int, int]:
    """Per event id, the ``event_processed`` lines; plus redeliveries deduped, unparseable lines."""
    processed: Counter[str] = Counter()
    duplicates = unparseable = 0
    for line in served.output().splitlines():
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            unparseable += 1
            continue
        if entry.get("event") == "event_processed":
            processed[entry.get("event_id", "?")] += 1
        elif entry.get("event") == "event_duplicate":
            duplicates += 1
    return processed, duplicates, unparseable


def store_counts(database_url: str, acked: set[str]) -> dict[str, int]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = dict(connection.execute(select(EventRow.id, EventRow.status)).all())
            cases = connection.scalar(
                select(func.count()).select_from(CaseRow).where(CaseRow.kind == "failed_renewal")
            )
    finally:
        engine.dispose()
    statuses = Counter(rows[i] for i in acked if i in rows)
    return {
        "stored": sum(statuses.values()),
        "processed": statuses["processed"],
        "failed": statuses["failed"],
        "cases": int(cases or 0),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--processes", type=int, default=2, help="serve --processes")
    parser.add_argument("--threads", type=int, default=4, help="serve --threads")
    parser.add_argument("--web-workers", type=int, default=2, help="serve --web-workers")
    parser.add_argument("--database-url", help="default: SQLite in the data dir")
    parser.add_argument("--drain-timeout", type=float, default=600.0)
    parser.add_argument("--keep", action="store_true", help="keep the data dir and serve's log")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="billing-ops-faults-"))
    data_dir = workdir / "data"
    port = free_port()
    env = {"DATABASE_URL": args.database_url} if args.database_url else {}
    database_url = args.database_url or f"sqlite:///{data_dir / 'billing-ops.db'}"
    served = start_serve(
        data_dir, port,
        "--web-workers", str(args.web_workers),
        "--processes", str(args.processes), "--threads", str(args.threads),
        env=env,
    )  # fmt: skip
    faults: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while not _ready(port):
            if served.process.poll() is not None or time.monotonic() > deadline:
                print(served.output()[-3000:], file=sys.stderr)
                return 2
            time.sleep(0.2)
        url = f"http://127.0.0.1:{port}/webhooks/stripe"
        bodies = event_bodies(args.events)
        tally = Tally()
        injector = threading.Thread(
            target=inject_faults, args=(served, tally, len(bodies), faults), daemon=True
        )
        injector.start()
        started = time.monotonic()
        with ThreadPoolExecutor(args.concurrency) as pool:
            for event_id, body in bodies:
                pool.submit(post_until_acked, url, served.secret, event_id, body, tally)
        posted = time.monotonic()
        injector.join(timeout=5)

        drain_deadline = time.monotonic() + args.drain_timeout
        counts = store_counts(database_url, tally.acked)
        while counts["processed"] + counts["failed"] < len(tally.acked):
            if time.monotonic() > drain_deadline:
                break
            time.sleep(1)
            counts = store_counts(database_url, tally.acked)
        done = time.monotonic()
        drained = counts["processed"] + counts["failed"] == len(tally.acked)

        os.kill(served.pid, signal.SIGTERM)
        served.process.wait(timeout=120)
        leftovers = processes_using(data_dir)
        processed_lines, deduped, unparseable = processing_log(served)
        twice = sum(1 for n in processed_lines.values() if n > 1)
        rate = len(tally.acked) / max(posted - started, 1e-9)
        print(
            f"events {args.events}, concurrency {args.concurrency}, serve --processes "
            f"{args.processes} --threads {args.threads} --web-workers {args.web_workers}, "
            f"store {database_url.split(':', 1)[0]}\n"
            f"faults          {'; '.join(faults) or 'none'}\n"
            f"answers         {dict(sorted(tally.answers.items()))} (0 = no answer)\n"
            f"acked           {len(tally.acked)} (given up: {len(tally.given_up)}), "
            f"posted in {posted - started:.1f} s ({rate:.0f}/s)\n"
            f"stored          {counts['stored']}\n"
            f"processed       {counts['processed']}\n"
            f"failed          {counts['failed']}\n"
            f"processed twice {twice} (event_processed lines per event > 1); failed_renewal "
            f"cases {counts['cases']} for {counts['processed']} processed; redeliveries "
            f"deduped {deduped}; unparseable log lines {unparseable}\n"
            f"time to drain   {done - tally.last_ack:.1f} s after the last 200"
            f"{'' if drained else ' (NOT drained: gave up)'}\n"
            f"leftovers       {len(leftovers)} processes after serve stopped"
        )
        ok = (
            drained
            and counts["stored"] == len(tally.acked) == args.events
            and twice == 0
            and counts["cases"] == counts["processed"]
            and not leftovers
        )
        return 0 if ok else 1
    finally:
        if served.process.poll() is None or processes_using(data_dir):
            kill_everything(served)
        if args.keep:
            print(f"kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
