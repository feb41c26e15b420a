"""``GET /api/cases``: filters, sorts, cursor pages with a total; bad parameters are 400s that
name the parameter. ``GET /api/lookup``: amounts in minor units, open cases, charges."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.webhooks.conftest import OPERATOR_TOKEN
from tests.worker.case_stock import stock_cases
from webhooks import create_app
from worker.store.db import upgrade_database

AUTH = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


@pytest.fixture
def stocked_api(settings):
    app = create_app(replace(settings, operator_token=OPERATOR_TOKEN))
    engine = app.config["ENGINE"]
    upgrade_database(engine, settings.data_dir)
    stock_cases(engine)
    return app.test_client()


@pytest.fixture
def bare_api(edge_settings):
    """The API over an empty SQLite store: enough for parameter checks."""
    app = create_app(replace(edge_settings, operator_token=OPERATOR_TOKEN))
    upgrade_database(app.config["ENGINE"], edge_settings.data_dir)
    return app.test_client()


def get(client, path: str, **params: str):
    response = client.get(path, query_string=params, headers=AUTH)
    return response.status_code, response.get_json()


def test_pages_carry_the_total_and_an_opaque_next_cursor(stocked_api):
    """Two pages of three cover all five cases once; the last page's ``next`` is null."""
    status, first = get(stocked_api, "/api/cases", limit="3", sort="-at_stake")
    assert status == 200 and first["total"] == 5 and len(first["cases"]) == 3
    status, second = get(
        stocked_api, "/api/cases", limit="3", sort="-at_stake", cursor=first["next"]
    )
    assert status == 200 and second["next"] is None and second["total"] == 5
    ids = [c["id"] for c in first["cases"] + second["cases"]]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 5


def test_filters_combine(stocked_api):
    """customer (email), currency and severity narrow the list together."""
    _, doc = get(stocked_api, "/api/cases", customer="ann@example.com", currency="usd")
    assert [c["customer"]["id"] for c in doc["cases"]] == ["cus_ann"] and doc["total"] == 1
    _, doc = get(stocked_api, "/api/cases", severity="medium", classification="failed_payment")
    assert [c["kind"] for c in doc["cases"]] == ["failed_renewal"]


def test_an_unknown_parameter_is_a_400_naming_it(bare_api):
    """``?sevrity=high`` is not silently ignored."""
    status, doc = get(bare_api, "/api/cases", sevrity="high")
    assert status == 400
    assert doc["error"] == "unknown_parameter" and doc["parameter"] == "sevrity"
    assert "severity" in doc["allowed"]


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("severity", "urgent"),
        ("limit", "500"),
        ("opened_since", "last week"),
        ("sort", "money"),
        ("cursor", "garbage"),
        ("customer", "nobody"),
    ],
)
def test_a_bad_value_is_a_400_naming_the_parameter(bare_api, parameter, value):
    """Each bad value answers 400 ``invalid_parameter`` with the parameter and why."""
    status, doc = get(bare_api, "/api/cases", **{parameter: value})
    assert status == 400
    assert doc["error"] == "invalid_parameter" and doc["parameter"] == parameter
    assert doc["detail"]


def test_a_repeated_parameter_is_a_400(bare_api):
    """``?status=open&status=resolved`` is refused rather than half-read."""
    response = bare_api.get("/api/cases?status=open&status=resolved", headers=AUTH)
    assert response.status_code == 400
    assert response.get_json()["parameter"] == "status"


def test_lookup_gives_integer_minor_units_open_cases_and_charges(stocked_api):
    """Lookup by email: every charge with integer amount and currency, the person's open
    cases with their money at stake; no formatted money strings."""
    _, doc = get(stocked_api, "/api/lookup", q="ann@example.com")
    charges = {c["id"]: c for c in doc["charges"]}
    assert charges["ch_3_1"]["amount_minor"] == 700 and charges["ch_3_1"]["currency"] == "jpy"
    assert charges["ch_0_2"]["amount_minor"] == 5000 and charges["ch_0_2"]["currency"] == "usd"
    assert {(c["currency"], c["at_stake_minor"], c["status"]) for c in doc["cases"]} == {
        ("usd", 5000, "open"),
        ("jpy", 700, "open"),
    }


def test_lookup_leaves_resolved_cases_out(stocked_api):
    """A resolved case is not one of the person's open cases."""
    _, before = get(stocked_api, "/api/lookup", q="cus_bob")
    (case,) = before["cases"]
    from worker.cases import set_status
    from worker.pipeline import utc_now

    set_status(
        stocked_api.application.config["ENGINE"],
        case["id"],
        "resolved",
        actor="sam",
        note="refunded",
        now=utc_now(),
    )
    _, after = get(stocked_api, "/api/lookup", q="cus_bob")
    assert after["cases"] == [] and after["charges"]


def test_lookup_invoice_amounts_are_minor_units(stocked_api):
    """A failed renewal invoice shows ``amount_due_minor`` and ``currency``."""
    _, doc = get(stocked_api, "/api/lookup", q="cus_dan")
    (invoice,) = doc["invoices"]
    assert (invoice["amount_due_minor"], invoice["currency"]) == (2900, "usd")
    (item,) = doc["subscriptions"]["active"][0]["items"]
    assert (item["unit_amount_minor"], item["currency"]) == (2900, "usd")
