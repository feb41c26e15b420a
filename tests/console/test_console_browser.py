"""An operator works the queue in a real browser (Debian's chromium, Playwright): sign in,
the replayed scenarios' cases, filter, open one, copy the follow-up, acknowledge, sign out."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.console.conftest import SCREENSHOTS, TOKEN, sign_in
from tests.support import duplicate_subscription_story
from worker.cases import get_case, list_cases
from worker.pipeline import process_event


def unresolved(engine) -> list[dict]:  # type: ignore[no-untyped-def]
    return [c for c in list_cases(engine) if c["status"] != "resolved"]


def test_a_wrong_token_is_refused_and_the_right_one_signs_in(page, site):
    """The sign-in page refuses a wrong token and lets the operator in with theirs."""
    page.goto(site.url + "/")
    expect(page).to_have_url(f"{site.url}/signin?next=/")
    page.fill("#token", "not-the-token")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("does not belong to an operator")
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    expect(page).to_have_url(site.url + "/")
    expect(page.locator(".who")).to_have_text("admin")


def test_the_queue_shows_the_replayed_cases_and_filters_by_kind(page, site):
    """Every unresolved case of the replayed scenarios is a row; a kind filter keeps only it."""
    sign_in(page, site)
    cases = unresolved(site.engine)
    rows = page.locator("#queue-table tbody tr[data-case-id]")
    expect(rows).to_have_count(len(cases))
    shown = set(rows.evaluate_all("rows => rows.map(r => Number(r.dataset.caseId))"))
    assert shown == {c["id"] for c in cases}
    page.screenshot(path=str(SCREENSHOTS / "queue.png"), full_page=True)

    page.select_option("select[name=kind]", "dispute")
    page.click(".filters button[type=submit]")
    disputes = {c["id"] for c in cases if c["kind"] == "dispute"}
    expect(rows).to_have_count(len(disputes))
    assert set(rows.evaluate_all("r => r.map(x => Number(x.dataset.caseId))")) == disputes
    expect(page.locator(".kind-counts a[data-kind=dispute] b")).to_have_text(str(len(disputes)))
    assert not page.problems, page.problems  # no CSP violation, no script error


def test_keyboard_j_k_and_enter_open_a_case(page, site):
    """j moves down, k up, enter opens the selected case."""
    sign_in(page, site)
    ids = page.locator("#queue-table tbody tr[data-case-id]").evaluate_all(
        "rows => rows.map(r => r.dataset.caseId)"
    )
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    expect(page.locator("tr.selected")).to_have_attribute("data-case-id", ids[0])
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{site.url}/cases/{ids[1]}")


def test_the_queue_refreshes_in_place_and_keeps_its_filter(page, site):
    """A new case appears without a reload; the filter in the URL and the form stays."""
    sign_in(page, site)
    page.goto(site.url + "/?kind=duplicate_subscription&sort=age")
    rows = page.locator("#queue-table tbody tr[data-case-id]")
    before = rows.count()
    for body in duplicate_subscription_story("fresh@example.com"):  # ids no scenario uses
        process_event(site.engine, body)
    expect(rows).to_have_count(before + 1, timeout=10_000)
    expect(page).to_have_url(site.url + "/?kind=duplicate_subscription&sort=age")
    expect(page.locator("select[name=kind]")).to_have_value("duplicate_subscription")


def test_a_case_is_read_copied_and_acknowledged(page, site):
    """The six sections, the follow-up on the clipboard, the ack in the timeline by name."""
    sign_in(page, site)
    case = next(c for c in unresolved(site.engine) if c["kind"] == "duplicate_subscription")
    page.goto(f"{site.url}/cases/{case['id']}")
    for title in ("CUSTOMER", "BILLING STATE", "DECISION", "ACTION TAKEN", "FOLLOW-UP"):
        expect(page.locator(".handoff-section h2", has_text=title)).to_have_count(1)
    expect(page.locator("a.stripe-id").first).to_have_attribute(
        "href", "https://dashboard.stripe.com/test/customers/" + case["customer"]["id"]
    )
    page.click("#copy-follow-up")
    expect(page.locator("#copy-follow-up")).to_have_attribute("data-copied", "yes")
    clipboard = page.evaluate("navigator.clipboard.readText()")
    assert clipboard == get_case(site.engine, case["id"])["handoff"]["follow_up"]

    page.fill("#ack-note", "on it")
    page.click("#ack")
    expect(page.locator("#case-status")).to_have_text("acknowledged")
    expect(page.locator("#timeline tbody tr").last).to_contain_text("admin")
    assert get_case(site.engine, case["id"])["status_by"] == "admin"
    page.screenshot(path=str(SCREENSHOTS / "case.png"), full_page=True)
    assert not page.problems, page.problems


def test_a_form_posted_without_its_csrf_token_is_refused(page, site):
    """The ack form stripped of its token is refused and the case stays open."""
    sign_in(page, site)
    case = next(c for c in unresolved(site.engine) if c["status"] == "open")
    page.goto(f"{site.url}/cases/{case['id']}")
    page.evaluate("document.querySelectorAll('input[name=csrf_token]').forEach(i => i.remove())")
    page.click("#ack")
    expect(page.locator("h1")).to_have_text("Form refused")
    assert get_case(site.engine, case["id"])["status"] == "open"


def test_sign_out_ends_the_session(page, site):
    """After sign-out the queue asks for the token again."""
    sign_in(page, site)
    page.click(".signout button")
    expect(page).to_have_url(site.url + "/signin")
    page.goto(site.url + "/health")
    expect(page).to_have_url(f"{site.url}/signin?next=/health")
