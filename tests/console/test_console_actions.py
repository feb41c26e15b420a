"""An action taken from the console, in a real browser, against the independent Stripe
emulator localstripe: planned (nothing sent), confirmed, executed once, ACTION TAKEN updated."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from playwright.sync_api import expect

from tests.console.conftest import Site, serve, sign_in
from tests.support import subscribe_twice
from tests.worker.sync_account import flush
from webhooks import create_app
from worker.cases import get_case, list_cases
from worker.stripe_api import stripe_client
from worker.sync.client import paced_client
from worker.sync.run import run_sync

API_KEY = "sk_test_billing_ops_console"
NINETY_DAYS = 90 * 86400


def duplicate_case_of(site: Site, customer_id: str) -> dict:
    (case,) = [
        c
        for c in list_cases(site.engine)
        if c["customer"]["id"] == customer_id and c["kind"] == "duplicate_subscription"
    ]
    return case


@pytest.fixture
def stripe_site(console_app, localstripe_url):  # type: ignore[no-untyped-def]
    """The console over the replayed scenarios plus an account synced from localstripe (a
    customer subscribed twice), with actions executed against localstripe."""
    flush(localstripe_url)
    client = stripe_client(API_KEY, localstripe_url)
    subscriptions = subscribe_twice(client, "dee@example.com", "Dee Dupe")
    settings = replace(
        console_app.config["SETTINGS"], stripe_api_key=API_KEY, stripe_api_base=localstripe_url
    )
    app = create_app(settings)
    sync_client, http = paced_client(API_KEY, localstripe_url, rate=1000)
    run_sync(app.config["ENGINE"], sync_client, http, since=int(time.time()) - NINETY_DAYS)
    with serve(app) as site:
        yield site, client, subscriptions


def test_an_action_is_planned_confirmed_and_shown_as_taken(page, stripe_site):
    """Plan shows the id and that it cannot be undone; confirm cancels it in Stripe once;
    ACTION TAKEN names what was done and who did it."""
    site, client, subscriptions = stripe_site
    (case,) = [
        c
        for c in list_cases(site.engine)
        if c["customer"]["id"] == subscriptions[0].customer
        and c["kind"] == "duplicate_subscription"
    ]
    newer = case["recommended_action"]["target"]
    sign_in(page, site)
    page.goto(f"{site.url}/cases/{case['id']}")
    expect(page.locator("#section-action_taken pre")).to_contain_text("not executed")
    expect(page.locator("#plan-action")).to_have_value("cancel_subscription")
    expect(page.locator("#plan-target")).to_have_value(newer)
    page.click("#plan")

    expect(page.locator("#plan-target")).to_have_text(newer)
    expect(page.locator("#plan-reversible")).to_contain_text("NO")
    assert client.v1.subscriptions.retrieve(newer).status == "active"  # a plan sends nothing
    assert get_case(site.engine, case["id"])["actions"] == []

    page.click("#confirm")
    expect(page.locator(".flash-ok")).to_contain_text(f"canceled {newer} now")
    expect(page.locator("#section-action_taken pre")).to_contain_text(f"canceled {newer} now")
    expect(page.locator("#section-action_taken pre")).to_contain_text("by admin")
    assert client.v1.subscriptions.retrieve(newer).status == "canceled"
    older = next(s.id for s in subscriptions if s.id != newer)
    assert client.v1.subscriptions.retrieve(older).status == "active"
    audit = get_case(site.engine, case["id"])["actions"]
    assert [(a["actor"], a["action"], a["result"]) for a in audit] == [
        ("admin", "cancel_subscription", "succeeded")
    ]
    assert not page.problems, page.problems


def test_a_confirmation_posted_again_sends_nothing_twice(page, stripe_site):
    """Back and confirm again (a double click, a reload): the audit answers, Stripe is not
    called a second time."""
    site, client, subscriptions = stripe_site
    (case,) = [
        c
        for c in list_cases(site.engine)
        if c["customer"]["id"] == subscriptions[0].customer
        and c["kind"] == "duplicate_subscription"
    ]
    sign_in(page, site)
    page.goto(f"{site.url}/cases/{case['id']}")
    page.click("#plan")
    plan_url = page.url
    page.click("#confirm")
    expect(page.locator(".flash-ok")).to_contain_text("canceled")
    page.goto(plan_url)
    expect(page.locator("#plan-done")).to_contain_text("Already done")
    actions = get_case(site.engine, case["id"])["actions"]
    assert len(actions) == 1
