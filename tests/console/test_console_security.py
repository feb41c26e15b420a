"""The console's security, through the app factory: sign-in, session cookie, CSRF, headers,
masked emails, and the machine endpoints left as they were."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.console.conftest import TOKEN
from webhooks import create_app
from worker.cases import get_case, list_cases
from worker.operators import add_operator, remove_operator
from worker.pipeline import utc_now
from worker.store.db import read_session
from worker.store.tables import ObjectRow

PAGES = ("/", "/cases/1", "/lookup?q=ada%40example.com", "/health")


def csrf_token(client: FlaskClient, path: str = "/signin") -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def signed_in(app: Flask) -> FlaskClient:
    client = app.test_client()
    token = csrf_token(client)
    response = client.post("/signin", data={"token": TOKEN, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


@pytest.mark.parametrize("path", PAGES)
def test_every_page_sends_a_signed_out_browser_to_sign_in(console_app, path):
    """Signed out, a page answers with the way to the sign-in form, never with data."""
    response = console_app.test_client().get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/signin?next=")


def test_a_wrong_token_is_refused_and_sets_no_session(console_app):
    """A wrong token gets 401 and the sign-in form again; no operator in the cookie."""
    client = console_app.test_client()
    response = client.post("/signin", data={"token": "nope", "csrf_token": csrf_token(client)})
    assert response.status_code == 401
    assert client.get("/").status_code == 302


def test_no_operator_token_configured_means_nobody_signs_in(console_app):
    """With OPERATOR_TOKEN unset the console stays closed, even to an empty token."""
    app = create_app(replace(console_app.config["SETTINGS"], operator_token=None))
    client = app.test_client()
    page = client.get("/signin").get_data(as_text=True)
    assert "No operator token is configured" in page
    response = client.post("/signin", data={"token": "", "csrf_token": csrf_token(client)})
    assert response.status_code == 401


def test_the_session_cookie_is_httponly_lax_and_secure_over_https(console_app):
    """HttpOnly and SameSite=Lax always; Secure when the request came over HTTPS."""
    plain = console_app.test_client()
    response = plain.post("/signin", data={"token": TOKEN, "csrf_token": csrf_token(plain)})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie

    tls = console_app.test_client()
    token = csrf_token(tls, "https://localhost/signin")
    response = tls.post(
        "/signin",
        data={"token": TOKEN, "csrf_token": token},
        base_url="https://localhost",
        headers={"Referer": "https://localhost/signin"},
    )
    assert response.status_code == 302
    assert "Secure" in response.headers["Set-Cookie"]


def test_sign_in_never_redirects_off_the_site(console_app):
    """``next`` pointing elsewhere lands on the queue instead."""
    client = console_app.test_client()
    for target in ("//evil.test/", "https://evil.test/", "/\\evil.test"):
        response = client.post(
            "/signin", data={"token": TOKEN, "next": target, "csrf_token": csrf_token(client)}
        )
        assert response.headers["Location"] == "/", target


def test_a_status_change_without_csrf_token_is_refused(console_app):
    """Signed in, an ack posted without its token is a 400 and the case is unchanged."""
    client = signed_in(console_app)
    response = client.post("/cases/1/status", data={"status": "acknowledged"})
    assert response.status_code == 400
    assert "Form refused" in response.get_data(as_text=True)
    assert get_case(console_app.config["ENGINE"], 1)["status"] == "open"


def test_resolving_needs_a_note_and_records_the_operator(console_app):
    """A resolve without a note changes nothing; with one, the operator's name is recorded."""
    client = signed_in(console_app)
    engine = console_app.config["ENGINE"]
    token = csrf_token(client, "/cases/1")
    client.post("/cases/1/status", data={"status": "resolved", "csrf_token": token})
    assert get_case(engine, 1)["status"] == "open"
    client.post(
        "/cases/1/status", data={"status": "resolved", "note": "refunded", "csrf_token": token}
    )
    case = get_case(engine, 1)
    assert (case["status"], case["status_by"], case["status_note"]) == (
        "resolved",
        "admin",
        "refunded",
    )
    assert case["timeline"][-1]["actor"] == "admin"


def test_acknowledging_a_resolved_case_from_the_console_leaves_it_resolved(console_app):
    """The console shares the CLI's and the API's transition: an ack of a resolved case is
    refused with the reason on the page (no 500, not reopened), and a repeated resolve adds no
    second timeline entry."""
    client = signed_in(console_app)
    engine = console_app.config["ENGINE"]
    token = csrf_token(client, "/cases/1")
    resolve = {"status": "resolved", "note": "refunded", "csrf_token": token}
    client.post("/cases/1/status", data=resolve)
    client.post("/cases/1/status", data=resolve)
    response = client.post(
        "/cases/1/status", data={"status": "acknowledged", "csrf_token": token},
        follow_redirects=True,
    )  # fmt: skip
    assert response.status_code == 200
    assert "would reopen it" in response.get_data(as_text=True)
    case = get_case(engine, 1)
    assert case["status"] == "resolved"
    assert [e["action"] for e in case["timeline"]].count("resolved") == 1


def test_sign_out_needs_the_token_and_ends_the_session(console_app):
    """Sign-out is a CSRF-protected POST; afterwards the pages ask for the token again."""
    client = signed_in(console_app)
    assert client.post("/signout").status_code == 400  # no token: a link cannot sign you out
    assert client.get("/").status_code == 200
    client.post("/signout", data={"csrf_token": csrf_token(client, "/")})
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("path", PAGES + ("/signin",))
def test_pages_carry_the_security_headers_and_no_inline_script(console_app, path):
    """CSP without inline script, no framing, no sniffing, not cached; every script is a file."""
    client = signed_in(console_app)
    response = client.get(path)
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    page = response.get_data(as_text=True)
    scripts = re.findall(r"<script\b[^>]*>", page)
    assert scripts and all(" src=" in tag for tag in scripts), scripts
    assert not re.search(r"\son[a-z]+=", page), "an inline event handler"


def test_list_views_show_masked_emails_only(console_app):
    """No customer's full address appears on the queue."""
    engine = console_app.config["ENGINE"]
    with read_session(engine) as session:
        emails = {e for e in session.scalars(select_emails()) if e}
    assert emails
    page = signed_in(console_app).get("/?status=all").get_data(as_text=True)
    assert not [e for e in emails if e in page]
    assert "a***@example.com" in page


def select_emails():  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    return select(ObjectRow.email).where(ObjectRow.object_type == "customer")


def test_machine_endpoints_get_no_session_and_no_csrf(console_app):
    """The API answers a bearer token without a cookie; the probes set none either."""
    client = console_app.test_client()
    response = client.get("/api/cases", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200 and "Set-Cookie" not in response.headers
    assert "Set-Cookie" not in client.get("/healthz").headers
    response = client.post(
        "/api/cases/1/actions",
        headers={"Authorization": f"Bearer {TOKEN}"},
        json={"action": "no_action"},
    )
    assert response.status_code == 200, response.get_json()


def test_the_queue_filters_sorts_and_counts(console_app):
    """Kind and classification filter the rows; counts per kind follow the other filters."""
    client = signed_in(console_app)
    engine = console_app.config["ENGINE"]
    open_cases = [c for c in list_cases(engine) if c["status"] != "resolved"]
    page = client.get("/?kind=dispute&sort=severity").get_data(as_text=True)
    shown = [int(i) for i in re.findall(r'data-case-id="(\d+)"', page)]
    disputes = [c for c in open_cases if c["kind"] == "dispute"]
    assert sorted(shown) == sorted(c["id"] for c in disputes)
    severities = [next(c["severity"] for c in disputes if c["id"] == i) for i in shown]
    order = ["critical", "high", "medium", "low"]
    assert severities == sorted(severities, key=order.index)
    page = client.get("/?sort=stake").get_data(as_text=True)
    cells = re.findall(r'<td class="money">([^<]*)</td>', page)
    assert len(cells) == len(open_cases)
    amounts = [float(c[:-4].replace(",", "")) for c in cells if c.endswith(" USD")]
    assert len(amounts) > 10 and amounts == sorted(amounts, reverse=True), cells
    page = client.get("/?classification=team_purchase").get_data(as_text=True)
    shown = {int(i) for i in re.findall(r'data-case-id="(\d+)"', page)}
    assert shown == {c["id"] for c in open_cases if c["classification"] == "team_purchase"}


def test_lookup_finds_a_person_by_payment_intent_and_dispute(console_app):
    """pi_ (through its charge) and dp_ ids find the person and their cases."""
    client = signed_in(console_app)
    page = client.get("/lookup?q=pi_AdaA").get_data(as_text=True)
    assert "cus_AdaA" in page and "case 1" in page
    page = client.get("/lookup?q=dp_Bob2").get_data(as_text=True)
    assert "cus_Bob" in page and "dispute" in page
    assert client.get("/lookup?q=zz_nothing").status_code == 400


def test_a_named_operator_signs_in_with_their_own_token_until_removed(console_app):
    """An operator's own token signs them in under their name; removing them ends the session."""
    engine = console_app.config["ENGINE"]
    token = add_operator(engine, "olga", is_admin=False, now=utc_now())
    client = console_app.test_client()
    client.post("/signin", data={"token": token, "csrf_token": csrf_token(client)})
    assert '<span class="who">olga</span>' in client.get("/").get_data(as_text=True)
    form = {"status": "acknowledged", "csrf_token": csrf_token(client, "/cases/1")}
    client.post("/cases/1/status", data=form)
    assert get_case(engine, 1)["status_by"] == "olga"
    remove_operator(engine, "olga")
    assert client.get("/").status_code == 302


def test_changing_operator_token_ends_the_admin_sessions(console_app):
    """A session opened with the old OPERATOR_TOKEN does not outlive the token."""
    client = signed_in(console_app)
    assert client.get("/").status_code == 200
    console_app.config["SETTINGS"] = replace(
        console_app.config["SETTINGS"], operator_token="a-new-token"
    )
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("sort", ["stake", "age", "severity"])
def test_walking_the_pages_shows_every_case_once_in_order(console_app, monkeypatch, sort):
    """Page after page (5 a page here), every unresolved case appears once, in the sort."""
    import html

    import webhooks.console.queue_source as queue_source

    monkeypatch.setattr(queue_source, "PAGE_SIZE", 5)
    client = signed_in(console_app)
    url: str | None = f"/?sort={sort}"
    seen: list[int] = []
    while url:
        page = client.get(url).get_data(as_text=True)
        seen += [int(i) for i in re.findall(r'data-case-id="(\d+)"', page)]
        found = re.search(r'<a rel="next" href="([^"]+)"', page)
        url = html.unescape(found.group(1)) if found else None
        assert len(seen) < 500, "the pages never end"
    cases = {c["id"]: c for c in list_cases(console_app.config["ENGINE"])}
    unresolved = [i for i, c in cases.items() if c["status"] != "resolved"]
    assert sorted(seen) == sorted(unresolved)
    if sort == "severity":
        ranks = [["critical", "high", "medium", "low"].index(cases[i]["severity"]) for i in seen]
        assert ranks == sorted(ranks)
    if sort == "age":
        opened = [cases[i]["opened_at"] for i in seen]
        assert opened == sorted(opened)
