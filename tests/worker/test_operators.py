"""``billing-ops operators``: a token printed once, stored hashed, listed and removed by name."""

from __future__ import annotations

import hashlib

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from worker.cli import main
from worker.operators import Operator, authenticate
from worker.store.db import make_engine, read_session
from worker.store.tables import OperatorRow


@pytest.fixture
def env(tmp_path, redis_url, database_url, monkeypatch) -> str:
    monkeypatch.setenv("BILLING_OPS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("BILLING_OPS_LOG_FORMAT", "json")
    (tmp_path / "data").mkdir()
    return database_url


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args))


def test_add_prints_a_token_that_authenticates_and_is_stored_only_hashed(env):
    """The printed token names the operator; the store holds its SHA-256, never the token."""
    result = run("operators", "add", "olga")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert token.startswith("bo_") and len(token) > 40
    engine = make_engine(env)
    assert authenticate(engine, None, token) == Operator("olga", is_admin=False)
    with read_session(engine) as session:
        (row,) = session.scalars(select(OperatorRow))
    assert row.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert token not in repr(row.__dict__)


def test_tokens_differ_and_a_wrong_one_is_nobody(env):
    """Two operators get two tokens; a token one character off authenticates nobody."""
    first = run("operators", "add", "olga").stdout.strip()
    second = run("operators", "add", "piet", "--admin").stdout.strip()
    engine = make_engine(env)
    assert first != second
    assert authenticate(engine, None, second) == Operator("piet", is_admin=True)
    assert authenticate(engine, None, first[:-1] + ("A" if first[-1] != "A" else "B")) is None
    assert authenticate(engine, None, "") is None


def test_operator_token_is_the_admin(env):
    """OPERATOR_TOKEN authenticates as the admin named "admin"; the name cannot be taken."""
    assert authenticate(make_engine(env), "s3cret", "s3cret") == Operator("admin", is_admin=True)
    result = run("operators", "add", "admin")
    assert result.exit_code == 1 and "OPERATOR_TOKEN" in result.output


def test_list_shows_names_never_tokens_and_remove_revokes(env):
    """list names operators and roles (no token); remove makes the token worthless."""
    token = run("operators", "add", "olga").stdout.strip()
    listing = run("operators", "list").output
    assert "olga" in listing and "operator" in listing and token not in listing
    assert run("operators", "remove", "olga").exit_code == 0
    assert authenticate(make_engine(env), None, token) is None
    assert "no operators" in run("operators", "list").output


def test_bad_duplicate_and_unknown_names_are_one_line_errors(env):
    """A name with spaces, a name taken twice, removing a stranger: exit 1, one line each."""
    assert run("operators", "add", "olga").exit_code == 0
    for args in (("add", "o lga"), ("add", "olga"), ("remove", "nobody")):
        result = run("operators", *args)
        assert result.exit_code == 1
        assert result.output.strip().count("\n") == 0, result.output
