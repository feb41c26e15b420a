"""How long the console's queue page (``GET /``) takes to render over a store of many cases.

Builds a store (a temporary SQLite file unless ``--database-url``) holding the replayed
scenario folder's cases cloned to ``--cases`` open cases (kinds, currencies and amounts
varied), signs in through the real sign-in form, then times each queue URL ``--repeat``
times through the app factory's full Flask stack (test client: no socket). Prints one line per
URL: median and 95th percentile in milliseconds, and the rows on the page.

    .venv/bin/python bench/console_queue.py [--cases 10000] [--repeat 30] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, select  # noqa: E402

from tests.support import FIXTURES  # noqa: E402
from webhooks import create_app  # noqa: E402
from worker.logs import configure_logging  # noqa: E402
from worker.replay import expand_paths, read_events, replay_events  # noqa: E402
from worker.settings import Settings  # noqa: E402
from worker.store.db import make_engine, read_session, upgrade_database, write_session  # noqa: E402
from worker.store.tables import CaseRow  # noqa: E402

TOKEN = "bench-operator-token"
URLS = ("/", "/?sort=age", "/?sort=severity", "/?kind=dispute", "/?status=all&sort=age")
CURRENCIES = ("usd", "eur", "gbp", "jpy", "kwd")


def build_store(database_url: str, data_dir: Path, cases: int) -> None:
    """The scenario folder replayed, then its cases cloned until there are ``cases`` rows."""
    engine = make_engine(database_url)
    upgrade_database(engine, data_dir)
    bodies = [b for p in expand_paths([FIXTURES / "scenarios"]) for b in read_events(p)]
    replay_events(
        engine,
        bodies,
        config=Settings(data_dir, (), database_url).rules,
        now=datetime(2026, 3, 1, tzinfo=UTC),
    )
    with read_session(engine) as session:
        templates = list(session.scalars(select(CaseRow)))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    for index in range(max(0, cases - len(templates))):
        template = templates[index % len(templates)]
        finding = json.loads(template.finding)
        currency = CURRENCIES[index % len(CURRENCIES)]
        amount = 100 + (index * 7919) % 500_000
        finding["revenue_impact"]["currency"] = currency
        finding["revenue_impact"]["amount_minor"] = amount
        customer = f"cus_bench{index}"
        finding["customer_id"] = customer
        opened = start + timedelta(minutes=index)
        rows.append(
            {
                "key": f"{template.key}:bench{index}",
                "status": "open",
                "kind": template.kind,
                "classification": template.classification,
                "severity": template.severity,
                "customer_id": customer,
                "currency": currency,  # the case list's money columns (worker/cases.py)
                "at_stake_minor": amount,
                "finding": json.dumps(finding, sort_keys=True),
                "handoff": template.handoff,
                "opened_at": opened,
                "updated_at": opened,
            }
        )
    with write_session(engine) as session:
        for chunk in range(0, len(rows), 1000):
            session.execute(insert(CaseRow), rows[chunk : chunk + 1000])
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    configure_logging("json")  # the replay's event lines go to stderr, the figures to stdout
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        url = args.database_url or f"sqlite:///{data_dir / 'bench.db'}"
        built = time.perf_counter()
        build_store(url, data_dir, args.cases)
        settings = Settings(
            data_dir=data_dir,
            webhook_secrets=("whsec_bench",),
            database_url=url,
            redis_url="redis://127.0.0.1:6379/14",  # never contacted by the queue page
            operator_token=TOKEN,
            log_format="json",
        )
        app = create_app(settings)
        client = app.test_client()
        form = client.get("/signin").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
        assert client.post("/signin", data={"token": TOKEN, "csrf_token": token}).status_code == 302
        print(
            f"{args.cases} cases on {url.split(':')[0]} (store built in "
            f"{time.perf_counter() - built:.1f}s); {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} cores, Python {platform.python_version()}"
        )
        for path in URLS:
            timings = []
            for _ in range(args.repeat):
                began = time.perf_counter()
                response = client.get(path)
                timings.append((time.perf_counter() - began) * 1000)
                assert response.status_code == 200, response.status_code
            rows = response.get_data(as_text=True).count("data-case-id=")
            p95 = statistics.quantiles(timings, n=20)[-1]
            print(
                f"GET {path:<26} median {statistics.median(timings):7.1f} ms   "
                f"p95 {p95:7.1f} ms   {rows} rows"
            )


if __name__ == "__main__":
    main()
