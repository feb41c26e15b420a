"""Per-event cost as history grows: 1,000,000 customers in the store against 1,000.

For each size, a fresh store (PostgreSQL by default: a database created and dropped here;
``--sqlite`` for a file) is migrated and filled with set-based SQL — one ``INSERT … SELECT``
per table over ``generate_series`` (a recursive CTE on SQLite), never through the pipeline:
per customer a ``customer`` and a ``subscription`` row in the projection and one processed
event in the event log, each customer with an email of their own. The JSON of those rows is
what the pipeline itself stores for such a customer (``rules.record_to_json``), with the ids
rewritten by SQL ``replace``. Then a quarter of a SaaS of *new* customers
(``bench/saas.py``, ``--customers``) goes through the same function replay and the workers
run (``worker.pipeline.process_event``), and the figure is milliseconds per event. The
ratio large/small is the issue's "≤ 1.3×" figure.

    .venv/bin/python bench/history.py                      # PostgreSQL, 1,000 vs 1,000,000
    .venv/bin/python bench/history.py --sizes 1000 100000  # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
sys.path[:0] = [str(ROOT), str(BENCH)]

from machine import describe  # noqa: E402
from saas import Customer, Templates, quarter  # noqa: E402
from sqlalchemy import Engine, create_engine, text  # noqa: E402

from rules import parse_event, record_to_json, records_from_event  # noqa: E402
from worker.logs import configure_logging  # noqa: E402
from worker.pipeline import process_event  # noqa: E402
from worker.store.db import is_sqlite, make_engine, upgrade_database  # noqa: E402

DEFAULT_PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
STEM = "TPL0000000"  # the template customer's id stem, replaced per generated row


@dataclass(frozen=True)
class Template:
    """One generated customer as the pipeline stores it: rows with ``STEM`` in place of ids."""

    rows: list[tuple[str, str, str, str, bool]]  # (type, id, version, data, partial)
    event: str


def template() -> Template:
    c = Customer(Templates(), 0, "TPL")
    c.stem, c.id, c.email = STEM, f"cus_{STEM}", f"user{STEM}@example.com"
    bodies = [c.customer_created(1_750_000_000)[1],
              c.subscription_event("customer.subscription.created", f"sub_{STEM}a",
                                   1_750_000_005)[1]]  # fmt: skip
    rows = []
    for body in bodies:
        for record in records_from_event(parse_event(json.loads(body))):
            doc = json.dumps(record_to_json(record), sort_keys=True, separators=(",", ":"))
            version = json.dumps(list(record.version), separators=(",", ":"))
            rows.append((record.object_type, record.object_id, version, doc, record.partial))
    return Template(rows=rows, event=bodies[0])


def fill(engine: Engine, customers: int) -> float:
    """Insert ``customers`` generated customers with set-based SQL; return seconds taken."""
    tpl = template()
    sqlite = is_sqlite(engine)
    series = (
        "WITH RECURSIVE series(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM series WHERE g < :n) "
        if sqlite
        else ""
    )
    source = "series" if sqlite else "generate_series(1, :n) AS series(g)"
    stem = (
        "('H' || substr('000000000' || g, -9, 9))" if sqlite else "('H' || lpad(g::text, 9, '0'))"
    )
    now = datetime.now(UTC)
    started = time.monotonic()
    with engine.begin() as connection:
        for object_type, object_id, version, data, partial in tpl.rows:
            connection.execute(
                text(
                    f"{series}INSERT INTO objects (object_type, object_id, customer_id, email, "
                    "link_id, version, partial, data, updated_at) "
                    f"SELECT :type, replace(:oid, :stem, {stem}), 'cus_' || {stem}, "
                    f"'user' || {stem} || '@example.com', NULL, replace(:version, :stem, {stem}), "
                    f":partial, replace(:data, :stem, {stem}), :now FROM {source}"
                ),
                {"n": customers, "type": object_type, "stem": STEM, "version": version,
                 "data": data, "partial": partial, "now": now, "oid": object_id},
            )  # fmt: skip
        connection.execute(
            text(
                f"{series}INSERT INTO events (id, type, created, livemode, api_version, payload, "
                "status, attempts, customer_id, received_at, updated_at, processed_at) "
                f"SELECT 'evt_' || {stem}, 'customer.created', 1750000000, false, "
                f"'2025-09-30.clover', replace(:payload, :stem, {stem}), 'processed', 1, "
                f"'cus_' || {stem}, :now, :now, :now FROM {source}"
            ),
            {"n": customers, "stem": STEM, "payload": tpl.event, "now": now},
        )
    if not sqlite:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
    return time.monotonic() - started


def measure(url: str, customers: int, new_customers: int) -> tuple[float, float, int]:
    """(fill seconds, ms per event, events) for a store of ``customers`` generated ones."""
    engine = make_engine(url)
    upgrade_database(engine)
    filled = fill(engine, customers)
    bodies = quarter(new_customers, tag="n")
    started = time.monotonic()
    for body in bodies:
        process_event(engine, body)
    elapsed = time.monotonic() - started
    engine.dispose()
    return filled, elapsed * 1000 / len(bodies), len(bodies)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 1_000_000])
    parser.add_argument("--customers", type=int, default=150, help="new customers processed")
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file instead")
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN)
    args = parser.parse_args()
    print(describe())
    results: list[tuple[int, float]] = []
    with (
        open(os.devnull, "w") as devnull,
        TemporaryDirectory(prefix="billing-ops-history-") as workdir,
    ):
        configure_logging("json", stream=devnull)  # as a worker logs, unseen
        for size in args.sizes:
            if args.sqlite:
                url, drop = f"sqlite:///{workdir}/history-{size}.db", None
            else:
                name = f"bench_history_{uuid.uuid4().hex[:8]}"
                admin = create_engine(args.pg_admin_url, isolation_level="AUTOCOMMIT")
                with admin.connect() as connection:
                    connection.execute(text(f'CREATE DATABASE "{name}"'))
                url, drop = f"{args.pg_admin_url.rsplit('/', 1)[0]}/{name}", name
            try:
                filled, per_event, count = measure(url, size, args.customers)
            finally:
                if drop:
                    with admin.connect() as connection:
                        connection.execute(text(f'DROP DATABASE IF EXISTS "{drop}" WITH (FORCE)'))
                    admin.dispose()
            results.append((size, per_event))
            print(
                f"{'sqlite' if args.sqlite else 'postgresql'}: {size:,} customers in the store "
                f"(filled in {filled:.1f} s): {per_event:.2f} ms per event over {count:,} "
                "new events"
            )
    if len(results) > 1:
        (small, base), (large, worst) = results[0], results[-1]
        print(f"per-event cost, {large:,} vs {small:,} customers: {worst / base:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
