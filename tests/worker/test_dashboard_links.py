"""Every Stripe id of a handoff links to its dashboard page, in the case's own mode."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tests.support import duplicate_subscription_story
from worker.cli import main
from worker.dashboard import dashboard_links, dashboard_url


def test_test_mode_ids_link_under_test_and_live_ids_do_not():
    """The same id opens under /test/ in test mode and without it live."""
    assert dashboard_url("sub_1", False) == "https://dashboard.stripe.com/test/subscriptions/sub_1"
    assert dashboard_url("ch_1", True) == "https://dashboard.stripe.com/payments/ch_1"
    assert dashboard_url("re_1", True) is None  # no page the dashboard documents


def test_links_name_each_id_once_in_order_of_appearance():
    """Ids inside text are found whole (not inside another word), each linked once."""
    links = dashboard_links(["cancel sub_2 (cus_1), keep sub_1; sub_2 again", "api_sub_9"], False)
    assert list(links) == ["sub_2", "cus_1", "sub_1"]


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize("livemode", [False, True])
def test_case_links_follow_the_events_livemode(
    tmp_path, redis_url, sqlite_url, monkeypatch, livemode
):
    """A replayed case's JSON and `cases show` link its ids in the mode its events were in."""
    monkeypatch.setenv("BILLING_OPS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("BILLING_OPS_LOG_FORMAT", "json")
    story = duplicate_subscription_story()
    if livemode:
        story = [json.dumps(json.loads(body) | {"livemode": True}) for body in story]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(story))
    assert run("replay", str(path)).exit_code == 0
    case_id = str(json.loads(run("cases", "list", "--json").output)[0]["id"])
    doc = json.loads(run("cases", "show", case_id, "--json").output)
    base = "https://dashboard.stripe.com" + ("" if livemode else "/test")
    assert doc["livemode"] is livemode
    assert doc["dashboard_links"]["sub_2"] == f"{base}/subscriptions/sub_2"
    assert doc["dashboard_links"]["cus_1"] == f"{base}/customers/cus_1"
    shown = run("cases", "show", case_id).output
    assert f"{base}/subscriptions/sub_2" in shown
