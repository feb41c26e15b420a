"""How much a clock run costs when few people are due among many: the index, not a scan.

Stores N people (a customer and a monthly subscription each, card far from expiry) and K of
them with a trial entering its last days, all through the real pipeline, then times:
  - one clock run at the instant the K trials come due (evaluates K people),
  - one clock run when nobody is due (the index answers with no rows),
  - for scale, evaluating every person once (what a clock without the index would do).
Also prints the database's plan for the due-index query.

  .venv/bin/python bench/clock.py                     # SQLite in a temp dir, N=2000, K=20
  .venv/bin/python bench/clock.py --people 5000 --due 50 --database-url postgresql://...
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rules import RulesConfig  # noqa: E402
from rules.due import clock_event  # noqa: E402
from tests.worker.clock_stories import DAY, T0, TRIAL_END, paying_with_card, trial_without_card  # noqa: E402
from worker.clock.evaluation import evaluate_person  # noqa: E402
from worker.clock.run import run_clock  # noqa: E402
from worker.pipeline import process_event  # noqa: E402
from worker.projection import find_person  # noqa: E402
from worker.store.db import make_engine, upgrade_database, write_session  # noqa: E402


def at(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=2000, help="people stored (not due)")
    parser.add_argument("--due", type=int, default=20, help="people whose trial comes due")
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp dir")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        engine = make_engine(url)
        upgrade_database(engine, Path(tmp))
        started = time.perf_counter()
        for n in range(args.people):
            for body in paying_with_card(f"cus_P{n:06d}", exp=(12, 2031)):
                process_event(engine, body)
        for n in range(args.due):
            for body in trial_without_card(f"cus_D{n:06d}", f"sub_D{n:06d}"):
                process_event(engine, body)
        print(f"stored {args.people + args.due} people in {time.perf_counter() - started:.1f} s")

        due_at = TRIAL_END - 3 * DAY
        timed = time.perf_counter()
        run = run_clock(engine, at(due_at))
        print(
            f"clock run, {len(run.evaluated)} due of {args.people + args.due}: "
            f"{(time.perf_counter() - timed) * 1000:.1f} ms, {len(run.cases_opened)} cases opened"
        )
        timed = time.perf_counter()
        idle = run_clock(engine, at(due_at + 60))
        print(
            f"clock run, nobody due ({len(idle.evaluated)} evaluated): "
            f"{(time.perf_counter() - timed) * 1000:.1f} ms"
        )
        timed = time.perf_counter()
        for n in range(args.people):
            with write_session(engine) as session:
                person = find_person(session, [f"cus_P{n:06d}"], [])
                evaluate_person(
                    session,
                    person,
                    clock_event(due_at),
                    at=due_at,
                    now=at(due_at),
                    config=RulesConfig(),
                    notify=None,
                )
        print(
            f"evaluating all {args.people} not-due people once (a scan): "
            f"{time.perf_counter() - timed:.1f} s"
        )
        explain = "EXPLAIN QUERY PLAN" if url.startswith("sqlite") else "EXPLAIN"
        with engine.connect() as connection:
            plan = connection.execute(
                text(
                    f"{explain} SELECT customer_id FROM clock_due WHERE due_at <= :at "
                    "ORDER BY due_at, customer_id LIMIT 200"
                ),
                {"at": due_at},
            ).all()
        print("plan of the due query:", " | ".join(str(tuple(row)[-1]) for row in plan))
        print(f"(trial start {T0}, evaluated at {due_at})")
        engine.dispose()


if __name__ == "__main__":
    main()
