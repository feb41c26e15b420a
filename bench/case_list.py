"""How long the case list takes on a large store: first page, a deep page, filters, the total,
each sort; and what ``cases export`` costs in time and memory.

Builds a store of ``--cases`` cases: a few real ones through the pipeline (a duplicate charge
per currency), then copies of their rows with the columns the list filters and sorts on spread
out (status, kind, severity, classification, currency, money at stake, opened/updated times,
customer), inserted in bulk — running 10,000 stories through the rules would time the rules,
not the list. Then times ``find_cases`` (median of ``--repeat`` runs, in ms) and
``iter_cases`` + ``write_export`` to a null stream (seconds, and the peak Python memory that
``tracemalloc`` saw, for two store sizes: flat means streaming works).

    .venv/bin/python bench/case_list.py [--cases 20000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import delete, insert, select, text  # noqa: E402

from tests.worker.case_stock import Person, duplicate_charge_events, opened_at  # noqa: E402
from worker.case_export import ExportFormat, write_export  # noqa: E402
from worker.case_queries import find_cases, iter_cases, parse_case_query  # noqa: E402
from worker.pipeline import process_event  # noqa: E402
from worker.store.db import make_engine, read_session, upgrade_database, write_session  # noqa: E402
from worker.store.tables import CaseEntryRow, CaseRow  # noqa: E402

CURRENCIES = ("usd", "eur", "jpy", "gbp")
KINDS = ("duplicate_charge", "failed_renewal", "churn_signal", "dispute")
SEVERITIES = ("low", "medium", "high", "critical")
CLASSIFICATIONS = ("accidental_duplicate", "failed_payment", "product_failure", "unclassified")
STATUSES = ("open", "open", "acknowledged", "resolved")


def build(engine, cases: int) -> None:
    """``cases`` case rows: real templates, then bulk copies with spread-out columns."""
    with write_session(engine) as session:
        session.execute(delete(CaseEntryRow))
        session.execute(delete(CaseRow))
    for index, currency in enumerate(CURRENCIES):
        person = Person(f"cus_tpl{index}", f"tpl{index}@example.com", f"Template {index}")
        for body in duplicate_charge_events(person, f"tpl{index}", amount=1000, currency=currency):
            process_event(engine, body, clock=lambda: opened_at(0))
    with read_session(engine) as session:
        templates = {row.currency: row for row in session.scalars(select(CaseRow))}
    rng = random.Random(7)
    batch: list[dict] = []
    for n in range(cases - len(templates)):
        currency = CURRENCIES[n % len(CURRENCIES)]
        template = templates[currency]
        opened = opened_at(0) + timedelta(minutes=rng.randrange(0, 365 * 24 * 60))
        batch.append(
            {
                "key": f"bench:{n}",
                "status": rng.choice(STATUSES),
                "kind": rng.choice(KINDS),
                "classification": rng.choice(CLASSIFICATIONS),
                "severity": rng.choice(SEVERITIES),
                "customer_id": f"cus_bench{n % (cases // 3 + 1)}",
                "finding": template.finding,
                "handoff": template.handoff,
                "opened_at": opened,
                "updated_at": opened + timedelta(minutes=rng.randrange(0, 10_000)),
                "currency": currency,
                "at_stake_minor": rng.randrange(100, 1_000_000),
            }
        )
        if len(batch) == 2000:
            with write_session(engine) as session:
                session.execute(insert(CaseRow), batch)
            batch = []
    if batch:
        with write_session(engine) as session:
            session.execute(insert(CaseRow), batch)
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))


def timed(fn, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - start) * 1000)
    return statistics.median(runs)


def deep_cursor(engine, params: dict[str, str], pages: int) -> str | None:
    query = parse_case_query(params)
    for _ in range(pages):
        page = find_cases(engine, query)
        if page.next_cursor is None:
            return None
        query = parse_case_query(params | {"cursor": page.next_cursor})
    return page.next_cursor


def measure_list(engine, repeat: int) -> None:
    cases = [
        ("first page, default sort", {}),
        ("first page, -at_stake", {"sort": "-at_stake"}),
        ("first page, opened_at", {"sort": "opened_at"}),
        ("status=open, -at_stake", {"status": "open", "sort": "-at_stake"}),
        ("currency=usd, -at_stake", {"currency": "usd", "sort": "-at_stake"}),
        ("severity=critical,high", {"severity": "critical,high"}),
        ("customer=cus_bench7", {"customer": "cus_bench7"}),
        ("opened_since (last 30 d)", {"opened_since": (opened_at(335)).isoformat()}),
        ("limit=200", {"limit": "200", "sort": "-at_stake"}),
    ]
    for label, params in cases:
        query = parse_case_query(params)
        ms = timed(lambda q=query: find_cases(engine, q), repeat)
        print(f"  {label:<34} {ms:8.1f} ms")
    for sort in ("-at_stake", "opened_at"):
        params = {"sort": sort}
        cursor = deep_cursor(engine, params, 100)
        if cursor:
            query = parse_case_query(params | {"cursor": cursor})
            ms = timed(lambda q=query: find_cases(engine, q), repeat)
            print(f"  {'page 101, ' + sort:<34} {ms:8.1f} ms")


def measure_export(engine, label: str, params: dict[str, str]) -> None:
    """Time without tracing, then the peak traced memory of a second run."""
    query = parse_case_query({"sort": "opened_at"} | params)
    start = time.perf_counter()
    count = write_export(iter_cases(engine, query), NullStream(), ExportFormat.CSV)
    seconds = time.perf_counter() - start
    tracemalloc.start()
    write_export(iter_cases(engine, query), NullStream(), ExportFormat.CSV)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"  export csv {label:<23} {count:>7} cases {seconds:6.1f} s  peak {peak / 1e6:5.1f} MB")


class NullStream(io.TextIOBase):
    """Discards what is written (a file or a pipe would keep nothing in memory either)."""

    def write(self, text: str) -> int:
        return len(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-case-list-"))
    url = args.database_url or f"sqlite:///{folder / 'bench.db'}"
    engine = make_engine(url)
    upgrade_database(engine, folder)
    print(f"{engine.dialect.name}: {args.cases} cases")
    build(engine, args.cases)
    measure_list(engine, args.repeat)
    # The export's peak memory for every case and for a quarter of them: flat if streaming.
    measure_export(engine, "(every case)", {})
    measure_export(engine, "(currency=usd: 1/4)", {"currency": "usd"})


if __name__ == "__main__":
    main()
