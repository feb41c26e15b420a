"""Every configuration mistake is one line on stderr that says what to do, and exit 1.

The commands run as a user runs them: ``python -m worker`` in a subprocess, with only the
environment given here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import FIXTURES, SECRET, free_port


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("BILLING_OPS_", "STRIPE_"))}
    base.pop("DATABASE_URL", None)
    base.pop("REDIS_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "worker", *args],
        cwd=cwd,
        env={**base, "BILLING_OPS_DATA_DIR": str(cwd / "data"), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0]


def test_database_url_that_is_not_a_url(tmp_path):
    """DATABASE_URL=notaurl names the setting and the two accepted forms."""
    result = run(["db", "upgrade"], tmp_path, DATABASE_URL="notaurl")
    assert_one_line_error(result, "DATABASE_URL", "sqlite:///", "postgresql://")


def test_database_url_of_an_unsupported_database(tmp_path):
    """mysql://… is refused as unsupported, not as a missing driver."""
    result = run(["db", "upgrade"], tmp_path, DATABASE_URL="mysql://root@127.0.0.1/test")
    assert_one_line_error(result, "mysql", "does not support")


def test_unreachable_postgresql(tmp_path):
    """A PostgreSQL that refuses connections is named as written, with its password hidden,
    and what to do."""
    port = free_port()
    url = f"postgresql://ops:hunter2@127.0.0.1:{port}/billing"
    result = run(["db", "upgrade"], tmp_path, DATABASE_URL=url)
    assert_one_line_error(
        result,
        f"database unreachable at postgresql://ops:***@127.0.0.1:{port}/billing",
        "fix DATABASE_URL",
    )
    assert "hunter2" not in result.stderr


@pytest.mark.postgres
def test_a_postgresql_url_works_from_the_first_command(tmp_path, postgres_url):
    """With the default install (psycopg is a dependency, not an extra), `db upgrade` and a
    reading command work on an empty PostgreSQL database with no data dir at all."""
    upgraded = run(["db", "upgrade"], tmp_path, DATABASE_URL=postgres_url)
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout == "database is up to date\n"
    listed = run(["cases", "list", "--json"], tmp_path, DATABASE_URL=postgres_url)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    assert not (tmp_path / "data").exists()


def test_a_sqlite_folder_that_cannot_be_created(tmp_path):
    """A SQLite file whose folder cannot be made (here: under a file) is one line naming it."""
    (tmp_path / "taken").write_text("a file, not a folder")
    url = f"sqlite:///{tmp_path / 'taken' / 'billing-ops.db'}"
    result = run(["db", "upgrade"], tmp_path, DATABASE_URL=url)
    assert_one_line_error(result, f"cannot create the folder {tmp_path / 'taken'}", "DATABASE_URL")


def test_serve_with_a_data_dir_it_cannot_write(tmp_path):
    """serve must keep its secret in the data dir: one that cannot be made is one line."""
    (tmp_path / "taken").write_text("a file, not a folder")
    result = run(["serve", "--port", str(free_port())], tmp_path,
                 BILLING_OPS_DATA_DIR=str(tmp_path / "taken" / "data"))  # fmt: skip
    assert_one_line_error(result, "BILLING_OPS_DATA_DIR", "cannot be written")


def test_a_redis_url_that_is_not_a_url(tmp_path):
    """REDIS_URL=notaurl is named with the accepted forms, before any connection is tried."""
    result = run(["worker"], tmp_path, REDIS_URL="localhost:6379")
    assert_one_line_error(result, "REDIS_URL 'localhost:6379' is not a Redis URL", "redis://")


def test_data_dir_that_is_a_file(tmp_path):
    """A data dir that is a file says so, before anything is created."""
    (tmp_path / "data").write_text("not a directory")
    result = run(["db", "upgrade"], tmp_path)
    assert_one_line_error(result, "BILLING_OPS_DATA_DIR", "is a file")


def test_unknown_rule_setting(tmp_path):
    """A misspelt BILLING_OPS_RULE_* is an error that lists the real names."""
    result = run(["db", "upgrade"], tmp_path, BILLING_OPS_RULE_DUPLICATE_WINDOW="60")
    assert_one_line_error(
        result,
        "unknown rule setting BILLING_OPS_RULE_DUPLICATE_WINDOW",
        "did you mean BILLING_OPS_RULE_DUPLICATE_CHARGE_WINDOW_SECONDS?",
        "the rule settings are",
    )


def test_bad_log_format(tmp_path):
    """BILLING_OPS_LOG_FORMAT accepts auto, json or console only."""
    result = run(["db", "upgrade"], tmp_path, BILLING_OPS_LOG_FORMAT="yaml")
    assert_one_line_error(result, "BILLING_OPS_LOG_FORMAT", "auto, json, console")


@pytest.mark.parametrize("value", ["soon", "-5", "60000"])
def test_bad_alert_settle_window(tmp_path, value):
    """BILLING_OPS_ALERT_SETTLE_SECONDS is whole seconds from 0 to an hour (60000 is most
    likely milliseconds)."""
    result = run(["db", "upgrade"], tmp_path, BILLING_OPS_ALERT_SETTLE_SECONDS=value)
    assert_one_line_error(result, "BILLING_OPS_ALERT_SETTLE_SECONDS", "0 (no settle window)")


def test_reading_commands_refuse_a_missing_data_dir(tmp_path):
    """`cases list` in the wrong folder refuses instead of creating an empty store there."""
    result = run(["cases", "list"], tmp_path)
    assert_one_line_error(result, "no billing-ops data directory", "BILLING_OPS_DATA_DIR")
    assert not (tmp_path / "data").exists()


def test_replay_enqueue_with_redis_down(tmp_path):
    """`replay --enqueue` with Redis down says Redis is unreachable and where."""
    event = FIXTURES / "events" / "customer.created__current.json"
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = run(["replay", "--enqueue", str(event)], tmp_path, REDIS_URL=url)
    assert_one_line_error(result, "Redis unreachable", url, "REDIS_URL")


@pytest.mark.parametrize("flag", ["--version"])
def test_version(tmp_path, flag):
    """`billing-ops --version` prints the package version."""
    result = run([flag], tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("billing-ops, version ")


def test_module_entry_point_help(tmp_path):
    """`python -m worker -h` is the billing-ops help."""
    result = run(["-h"], tmp_path)
    assert result.returncode == 0
    assert "Usage: billing-ops" in result.stdout


def test_reading_commands_work_with_an_existing_install(tmp_path):
    """Where the data dir exists, `cases list --json` answers (an empty list)."""
    assert run(["db", "upgrade"], tmp_path).returncode == 0
    result = run(["cases", "list", "--json"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


# The Procfile processes: only `serve` may generate a secret or run its own Redis.


def test_web_refuses_to_start_without_a_webhook_secret(tmp_path, redis_url):
    """`billing-ops web` with no STRIPE_WEBHOOK_SECRET would reject every real delivery with a
    secret of its own: it refuses, before creating anything."""
    result = run(["web", "--bind", f"127.0.0.1:{free_port()}"], tmp_path, REDIS_URL=redis_url)
    assert_one_line_error(result, "STRIPE_WEBHOOK_SECRET is not set", "billing-ops web", "whsec_")
    assert not (tmp_path / "data").exists()


def test_web_refuses_to_start_without_redis_url(tmp_path):
    """`billing-ops web` with no REDIS_URL would answer every webhook 503: it refuses."""
    result = run(
        ["web", "--bind", f"127.0.0.1:{free_port()}"], tmp_path, STRIPE_WEBHOOK_SECRET=SECRET
    )
    assert_one_line_error(result, "REDIS_URL is not set", "billing-ops web", "redis://")
    assert not (tmp_path / "data").exists()


def test_web_refuses_a_redis_that_does_not_answer(tmp_path):
    """A REDIS_URL where nothing listens is named, with what to do, before gunicorn starts."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    port = free_port()
    result = run(
        ["web", "--bind", f"127.0.0.1:{port}"],
        tmp_path,
        STRIPE_WEBHOOK_SECRET=SECRET,
        REDIS_URL=url,
    )
    assert_one_line_error(result, "Redis unreachable", url, "REDIS_URL")
    assert not (tmp_path / "data").exists()


def test_worker_refuses_to_start_without_redis_url(tmp_path):
    """`billing-ops worker` with no REDIS_URL would wait on a Redis nobody runs: it refuses."""
    result = run(["worker", "--processes", "1"], tmp_path)
    assert_one_line_error(result, "REDIS_URL is not set", "billing-ops worker")
    assert not (tmp_path / "data").exists()


def test_worker_refuses_a_redis_that_does_not_answer(tmp_path):
    """`billing-ops worker` with a REDIS_URL where nothing listens: one line, nothing started."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = run(["worker", "--processes", "1"], tmp_path, REDIS_URL=url)
    assert_one_line_error(result, "Redis unreachable", url, "REDIS_URL")
    assert not (tmp_path / "data").exists()


def test_web_refuses_a_webhook_secret_with_no_secret_in_it(tmp_path, redis_url):
    """STRIPE_WEBHOOK_SECRET="," is set but empty: refused, saying what a secret looks like."""
    result = run(["web"], tmp_path, STRIPE_WEBHOOK_SECRET=",", REDIS_URL=redis_url)
    assert_one_line_error(result, "STRIPE_WEBHOOK_SECRET is set but holds no secret", "whsec_")
