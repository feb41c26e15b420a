"""Worker logs: whole JSON lines through Dramatiq's log pipe, no payload, no SQL parameters."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path

import dramatiq
import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from tests.support import SECRET, stop_group
from worker.broker import EVENTS_QUEUE, PROCESS_EVENT_ACTOR, build_broker
from worker.store.db import make_engine

THREADS = 8
LINES_PER_THREAD = 40
LONG = 9000  # characters per value: twice PIPE_BUF


def _log_from_many_threads(write_end: Connection) -> None:
    """In a fresh process: set logging up exactly as a Dramatiq worker process does, then log
    long lines from structlog and the standard library at once, from many threads."""
    import logging

    import structlog
    from dramatiq.cli import setup_worker_logging
    from dramatiq.compat import StreamablePipe

    from worker.logs import configure_logging

    logging.getLogger().handlers.clear()  # a Dramatiq worker starts with none
    setup_worker_logging(argparse.Namespace(verbose=0, skip_logging=False), 0,
                         StreamablePipe(write_end))  # fmt: skip
    configure_logging("json")  # what worker.entrypoint does

    def chatter(index: int) -> None:
        for n in range(LINES_PER_THREAD):
            structlog.get_logger().info("long_structlog_line", thread=index, n=n, blob="s" * LONG)
            logging.getLogger("dramatiq.worker").warning("long stdlib line %s", "d" * LONG)

    threads = [threading.Thread(target=chatter, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    write_end.close()
    os._exit(0)


def test_concurrent_long_lines_reach_the_log_pipe_whole():
    """Many threads, two loggers, 9 KB values: the pipe's reader gets every line, each JSON."""
    context = multiprocessing.get_context("fork")
    read_end, write_end = context.Pipe(duplex=False)
    child = context.Process(target=_log_from_many_threads, args=(write_end,))
    child.start()
    write_end.close()
    received: list[bytes] = []

    def read() -> None:  # what Dramatiq's log watcher does: one recv_bytes per message
        try:
            while True:
                received.append(read_end.recv_bytes())
        except (EOFError, OSError):
            pass

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=60)
    child.join(timeout=10)
    assert not reader.is_alive(), "the log pipe's reader is stuck (a torn frame)"
    lines = [line for chunk in received for line in chunk.decode().splitlines()]
    assert len(lines) == THREADS * LINES_PER_THREAD * 2
    for line in lines:
        doc = json.loads(line)
        assert len(line.encode()) < 4096 and doc["event"]


@pytest.fixture
def worker_log(tmp_path: Path, redis_url: str):
    """``billing-ops worker`` (supervisor + Dramatiq) with its output in a file; stopped after."""
    log = tmp_path / "worker.log"
    env = dict(os.environ, REDIS_URL=redis_url, DATABASE_URL=f"sqlite:///{tmp_path / 'w.db'}",
               STRIPE_WEBHOOK_SECRET=SECRET, BILLING_OPS_DATA_DIR=str(tmp_path / "data"),
               BILLING_OPS_LOG_FORMAT="json")  # fmt: skip
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "billing-ops"), "worker", "--processes", "1",
             "--threads", "2"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            yield log
        finally:
            stop_group(process, timeout=30)


def test_a_failed_message_is_logged_without_its_payload(worker_log: Path, redis_url: str):
    """Dramatiq's "failed to process" line names the message, not the event's emails and
    cards; every line of the worker tree is JSON; Alembic says nothing on start."""
    payload = json.dumps(
        {"id": "evt_pii", "customer_email": "jane.doe@example.com", "card": "4242424242424242"}
    )
    broker = build_broker(redis_url, edge=False)
    message = dramatiq.Message(
        queue_name=EVENTS_QUEUE, actor_name=PROCESS_EVENT_ACTOR,
        args=(payload, "an argument too many"), kwargs={}, options={"max_retries": 0},
    )  # fmt: skip
    broker.enqueue(message)
    deadline = time.monotonic() + 60
    while message.message_id not in worker_log.read_text(errors="replace"):
        assert time.monotonic() < deadline, worker_log.read_text(errors="replace")[-3000:]
        time.sleep(0.2)
    text_ = worker_log.read_text()
    assert "jane.doe" not in text_ and "4242424242424242" not in text_
    assert f"process_event({message.message_id})" in text_
    assert "Context impl" not in text_ and "alembic" not in text_
    for line in text_.splitlines():
        assert json.loads(line)["event"], line


def test_sql_errors_name_the_statement_not_its_parameters(database_url: str):
    """An error's text (logged, kept as an event's ``last_error``) carries no bound value."""
    engine = make_engine(database_url)
    with pytest.raises(SQLAlchemyError) as raised, engine.connect() as connection:
        connection.execute(text("INSERT INTO no_such_table VALUES (:v)"), {"v": "jane@example.com"})
    assert "jane@example.com" not in str(raised.value)
    engine.dispose()
