"""End to end: signed webhooks into a real `billing-ops serve` until every event is processed.

Starts `billing-ops serve` (embedded Redis; SQLite unless ``--database-url``, or
``--postgres`` for a fresh PostgreSQL database created and dropped here) on a free loopback
port with ``serve``'s defaults (``--processes``, ``--threads``, ``--web-workers`` override
them) and posts a quarter of a SaaS (``bench/saas.py``: 2,716 events by default) from
``--senders`` threads, each on a kept-alive HTTP/1.1 connection with a fresh Stripe signature
per request, retrying a non-200 like Stripe does.

* saturation (default): the events go as fast as the senders can post them, oldest first;
  the figure is events / (last event processed − first post). Drained = every event's row is
  ``processed`` in the store (the last event's case is then visible too: it is written in
  that same transaction);
* ``--rate R``: an open loop, each event scheduled at ``start + i / R``; latency is the
  event's ``processed_at`` (the worker's clock when its write transaction began, so it
  under-states by that transaction, a few ms) minus its *scheduled* arrival, so a slow server
  cannot hide queueing. Prints p50 / p99 / max arrival → processed.

Only 127.0.0.1 is contacted; every loop is bounded; serve and everything it started is killed
on exit, Ctrl-C included.

    .venv/bin/python bench/e2e.py                          # SQLite, saturation
    .venv/bin/python bench/e2e.py --postgres               # PostgreSQL, saturation
    .venv/bin/python bench/e2e.py --postgres --rate 200    # p50/p99 arrival -> processed
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
sys.path[:0] = [str(ROOT), str(BENCH)]

from machine import describe  # noqa: E402
from saas import E2E_CUSTOMERS, quarter  # noqa: E402
from sqlalchemy import create_engine, func, select, text  # noqa: E402

from tests.serving import Served, kill_everything, start_serve  # noqa: E402
from tests.support import free_port, sign  # noqa: E402
from worker.store.db import make_engine  # noqa: E402
from worker.store.tables import CaseRow, EventRow  # noqa: E402

DEFAULT_PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
POST_GIVE_UP_SECONDS = 120.0


@dataclass
class Tally:
    acked: int = 0
    retried: int = 0
    first_post: float = 0.0
    last_ack: float = 0.0
    scheduled: dict[str, float] = field(default_factory=dict)  # event id -> wall clock
    lock: threading.Lock = field(default_factory=threading.Lock)


def post(conn: http.client.HTTPConnection, body: bytes, secret: str) -> int:
    headers = {"Stripe-Signature": sign(body, secret), "Content-Type": "application/json"}
    try:
        conn.request("POST", "/webhooks/stripe", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        conn.close()
        return 0


def sender(port: int, secret: str, work: list[tuple[str, bytes]], slots: itertools.count,
           tally: Tally, rate: float, start: float) -> None:  # fmt: skip
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while True:
        with tally.lock:
            index = next(slots)
        if index >= len(work):
            break
        event_id, body = work[index]
        if rate:
            due = start + index / rate
            if (delay := due - time.time()) > 0:
                time.sleep(delay)
            with tally.lock:
                tally.scheduled[event_id] = due
        deadline, backoff = time.monotonic() + POST_GIVE_UP_SECONDS, 0.05
        while post(conn, body, secret) != 200:
            with tally.lock:
                tally.retried += 1
            if time.monotonic() > deadline:
                raise SystemExit(f"{event_id}: no 200 after {POST_GIVE_UP_SECONDS:.0f} s")
            time.sleep(backoff)
            backoff = min(backoff * 2, 1.0)
        with tally.lock:
            tally.acked += 1
            tally.last_ack = time.monotonic()
    conn.close()


def processed_count(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        return int(
            connection.scalar(
                select(func.count()).select_from(EventRow).where(EventRow.status == "processed")
            )
            or 0
        )


@dataclass
class Database:
    url: str | None  # None: serve's SQLite
    admin_url: str | None = None
    name: str | None = None

    @classmethod
    def postgres(cls, admin_url: str) -> Database:
        name = f"bench_e2e_{uuid.uuid4().hex[:8]}"
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        base = admin_url.rsplit("/", 1)[0]
        return cls(url=f"{base}/{name}", admin_url=admin_url, name=name)

    def drop(self) -> None:
        if self.admin_url and self.name:
            admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
            admin.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=E2E_CUSTOMERS)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--rate", type=float, default=0.0, help="open loop: events/s (0: flat out)")
    parser.add_argument("--postgres", action="store_true", help="a fresh PostgreSQL database")
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN)
    parser.add_argument("--database-url", help="an existing, empty database instead")
    parser.add_argument("--processes", type=int, help="serve --processes (default: serve's)")
    parser.add_argument("--threads", type=int, help="serve --threads (default: serve's)")
    parser.add_argument("--web-workers", type=int, default=2, help="serve --web-workers")
    parser.add_argument("--drain-timeout", type=float, default=900.0)
    args = parser.parse_args()

    print(describe())
    work = [(json.loads(b)["id"], b.encode()) for b in quarter(args.customers)]
    database = (
        Database.postgres(args.pg_admin_url) if args.postgres else Database(args.database_url)
    )
    workdir = Path(tempfile.mkdtemp(prefix="billing-ops-e2e-"))
    data_dir = workdir / "data"
    serve_args = ["--web-workers", str(args.web_workers)]
    if args.processes:
        serve_args += ["--processes", str(args.processes)]
    if args.threads:
        serve_args += ["--threads", str(args.threads)]
    env = {"DATABASE_URL": database.url} if database.url else {}
    served: Served | None = None
    try:
        served = start_serve(data_dir, free_port(), *serve_args, env=env)
        deadline = time.monotonic() + 120
        while not served.ready():
            if served.process.poll() is not None or time.monotonic() > deadline:
                print(served.output()[-3000:], file=sys.stderr)
                return 2
            time.sleep(0.2)
        engine = make_engine(database.url or f"sqlite:///{data_dir / 'billing-ops.db'}")
        tally = Tally()
        slots = itertools.count()
        start = time.time() + 0.5
        threads = [
            threading.Thread(
                target=sender,
                args=(served.port, served.secret, work, slots, tally, args.rate, start),
                daemon=True,
            )  # fmt: skip
            for _ in range(args.senders)
        ]
        time.sleep(max(0.0, start - time.time()))
        began = time.monotonic()
        for thread in threads:
            thread.start()
        drained_at = None
        give_up = time.monotonic() + args.drain_timeout
        while time.monotonic() < give_up:
            if processed_count(engine) >= len(work):
                drained_at = time.monotonic()
                break
            time.sleep(0.1)
        for thread in threads:
            thread.join(timeout=5)
        if drained_at is None:
            print(f"NOT drained within {args.drain_timeout:.0f} s: "
                  f"{processed_count(engine)} of {len(work)} processed")  # fmt: skip
            return 1
        elapsed = drained_at - began
        with engine.connect() as connection:
            cases = connection.scalar(select(func.count()).select_from(CaseRow))
            open_cases = connection.scalar(
                select(func.count()).select_from(CaseRow).where(CaseRow.status == "open")
            )
            rows = connection.execute(select(EventRow.id, EventRow.processed_at)).all()
            processed_at = dict(rows)
        store = "postgresql" if database.url and "postgres" in database.url else "sqlite"
        mode = f"open loop {args.rate:g} events/s" if args.rate else "saturation"
        print(
            f"{store}, {mode}: {len(work):,} events, {args.senders} senders, serve "
            f"{' '.join(serve_args)}; posted in {tally.last_ack - began:.1f} s "
            f"({tally.acked / max(tally.last_ack - began, 1e-9):,.0f}/s acked, "
            f"{tally.retried} retries)"
        )
        # Open cases are the figure that must not change from run to run; resolved ones
        # depend on arrival order (a renewal paid before its failure never opens a case).
        print(f"{open_cases} open cases ({cases} in all, resolved ones vary with arrival order)")
        print(f"drained in {elapsed:.1f} s: {len(work) / elapsed:,.0f} events/s end to end")
        if args.rate:
            latencies = sorted(
                _epoch(processed_at[event_id]) - due for event_id, due in tally.scheduled.items()
            )
            q = statistics.quantiles(latencies, n=100)
            print(
                f"arrival -> processed: p50 {q[49] * 1000:,.0f} ms, p99 {q[98] * 1000:,.0f} ms, "
                f"max {latencies[-1] * 1000:,.0f} ms"
            )
        engine.dispose()
        return 0
    finally:
        if served is not None:
            kill_everything(served)
        database.drop()
        shutil.rmtree(workdir, ignore_errors=True)


def _epoch(moment: datetime) -> float:
    """SQLite gives the stored UTC time back without its zone."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


if __name__ == "__main__":
    sys.exit(main())
