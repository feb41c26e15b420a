"""The person lookup runs on every event: on PostgreSQL it must be index lookups, never a scan of
the whole ``objects`` table (which holds every customer, subscription and invoice)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from worker.projection import find_person
from worker.store.db import make_engine, upgrade_database


def _captured_lookup(engine: Engine, customer_ids: list[str], emails: list[str]) -> list[str]:
    """The plan PostgreSQL makes for find_person's statement, with sequential scans priced out
    (so a plan that still scans has no other way to answer)."""
    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with Session(engine) as session:
            find_person(session, customer_ids, emails)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    [(statement, parameters)] = [(s, p) for s, p in seen if "objects" in s]
    with engine.connect() as connection:
        connection.execute(text("SET enable_seqscan = off"))
        cursor = connection.connection.driver_connection.cursor()
        cursor.execute("EXPLAIN " + statement, parameters)
        return [row[0] for row in cursor.fetchall()]


def _whole_table_reads(plan: list[str]) -> list[str]:
    """The plan's reads of ``objects`` that no condition bounds: a sequential scan, or an index
    walked from end to end (PostgreSQL's way of filtering an OR with a subquery)."""
    unbounded = []
    for at, line in enumerate(plan):
        if " on objects" not in line:
            continue
        details = []
        for following in plan[at + 1 :]:
            if "->" in following:
                break
            details.append(following)
        if not any("Index Cond:" in d or "Recheck Cond:" in d for d in details):
            unbounded.append(line.strip())
    return unbounded


def _plan_on_fresh_store(url: str, data_dir: Path, ids: list[str], emails: list[str]) -> list[str]:
    engine = make_engine(url)
    upgrade_database(engine, data_dir)
    try:
        return _captured_lookup(engine, ids, emails)
    finally:
        engine.dispose()


def test_a_person_found_by_customer_id_and_email_is_index_lookups(
    postgres_url: str, tmp_path: Path
) -> None:
    plan = _plan_on_fresh_store(postgres_url, tmp_path, ["cus_A"], ["a@example.com"])
    assert not _whole_table_reads(plan), "\n".join(plan)


def test_a_person_found_by_customer_ids_alone_is_index_lookups(
    postgres_url: str, tmp_path: Path
) -> None:
    plan = _plan_on_fresh_store(postgres_url, tmp_path, ["cus_A", "cus_B"], [])
    assert not _whole_table_reads(plan), "\n".join(plan)
