"""``billing-ops sync`` as a process, killed (SIGKILL) half-way through an account in
localstripe: the rerun continues from the store's cursors and finishes the job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.worker.sync_account import build_account, flush
from worker.cases import list_cases
from worker.store.db import make_engine
from worker.stripe_api import stripe_client

API_KEY = "sk_test_billing_ops_killed"


def listed_subscriptions(engine) -> int:
    with engine.connect() as connection:
        try:
            value = connection.execute(
                text("SELECT objects FROM sync_cursors WHERE kind = 'subscriptions'")
            ).scalar()
        except DBAPIError:  # the table does not exist until the process migrated the store
            return 0
    return int(value or 0)


def test_a_killed_sync_is_finished_by_the_rerun(tmp_path, database_url, localstripe_url):
    """Killed once subscriptions are listed, before evaluation: no case yet; the rerun resumes
    each kind from its cursor and opens the cases."""
    flush(localstripe_url)
    account = build_account(stripe_client(API_KEY, localstripe_url))
    env = {
        **os.environ,
        "BILLING_OPS_DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": database_url,
        "BILLING_OPS_LOG_FORMAT": "json",
        "STRIPE_API_KEY": API_KEY,
        "STRIPE_API_BASE": localstripe_url,
    }
    command = [sys.executable, "-m", "worker", "sync", "--rate", "2"]
    engine = make_engine(database_url)
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while listed_subscriptions(engine) == 0 and process.poll() is None:
        assert time.monotonic() < deadline, "sync never listed subscriptions"
        time.sleep(0.05)
    process.kill()
    process.communicate(timeout=10)
    assert list_cases(engine) == []

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    assert rerun.returncode == 0, rerun.stderr
    summary = rerun.stdout.strip()
    assert "customers=3" in summary and "subscriptions=4" in summary
    resumed = [json.loads(line) for line in rerun.stderr.splitlines() if "sync_resumed" in line]
    assert {"customers", "subscriptions"} <= {line["kind"] for line in resumed}
    kinds = {(c["customer"]["id"], c["kind"]) for c in list_cases(engine)}
    assert (account.duplicate_customer, "duplicate_subscription") in kinds
    assert (account.past_due_customer, "failed_renewal") in kinds
    engine.dispose()
