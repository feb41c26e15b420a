"""The case list's one way in: filters, sorts, keyset pages with a total, strict parameters."""

from __future__ import annotations

from itertools import islice

import pytest
from alembic import command
from sqlalchemy import select

from tests.worker.case_stock import (
    Person,
    duplicate_charge_events,
    opened_at,
    stock_cases,
)
from worker.case_queries import (
    MAX_LIMIT,
    PARAMETERS,
    CaseQueryError,
    UnknownParameterError,
    find_cases,
    iter_cases,
    parse_case_query,
)
from worker.pipeline import process_event
from worker.store.db import alembic_config, read_session
from worker.store.tables import CaseRow


@pytest.fixture
def stocked(engine):
    stock_cases(engine)
    return engine


def customers(page_or_cases) -> list[str]:
    cases = getattr(page_or_cases, "cases", page_or_cases)
    return [case.customer.id for case in cases]


def listed(engine, **params: str) -> list[str]:
    return customers(find_cases(engine, parse_case_query(params)))


def test_default_order_is_the_latest_change_first(stocked):
    """Without a sort, the most recently changed case comes first."""
    assert listed(stocked) == ["cus_dan", "cus_ann2", "cus_cat", "cus_bob", "cus_ann"]


def test_age_sorts_both_ways(stocked):
    """``opened_at`` is oldest first, ``-opened_at`` newest first."""
    assert listed(stocked, sort="opened_at") == [
        "cus_ann", "cus_bob", "cus_cat", "cus_ann2", "cus_dan"
    ]  # fmt: skip
    assert listed(stocked, sort="-opened_at") == listed(stocked, sort="opened_at")[::-1]


def test_money_at_stake_sorts_within_each_currency(stocked):
    """Currencies in code order (eur, jpy, usd) and, within each, amounts in the direction
    asked: 700 JPY is never compared with 5,000 USD cents."""
    assert listed(stocked, sort="-at_stake") == [
        "cus_cat", "cus_ann2", "cus_bob", "cus_ann", "cus_dan"
    ]  # fmt: skip
    assert listed(stocked, sort="at_stake") == [
        "cus_cat", "cus_ann2", "cus_dan", "cus_ann", "cus_bob"
    ]  # fmt: skip


def test_currency_filter_keeps_one_currency(stocked):
    """``currency=usd`` with ``-at_stake`` is the largest US-dollar amounts first."""
    page = find_cases(stocked, parse_case_query({"currency": "USD", "sort": "-at_stake"}))
    assert customers(page) == ["cus_bob", "cus_ann", "cus_dan"]
    assert [c.at_stake_minor for c in page.cases] == [120_000, 5_000, 2_900]


def test_customer_filter_by_email_covers_every_record_of_the_person(stocked):
    """An email names the person: both customer records sharing it."""
    assert sorted(listed(stocked, customer="ANN@example.com")) == ["cus_ann", "cus_ann2"]


def test_customer_filter_by_id_covers_the_person_too(stocked):
    """A cus_ id expands to every record sharing its email, like lookup."""
    assert sorted(listed(stocked, customer="cus_ann2")) == ["cus_ann", "cus_ann2"]
    assert listed(stocked, customer="cus_bob") == ["cus_bob"]
    assert listed(stocked, customer="cus_nobody") == []


def test_severity_classification_kind_and_status_filters(stocked):
    """Each filter narrows; comma-separated values are alternatives."""
    assert listed(stocked, severity="medium") == ["cus_dan"]
    assert listed(stocked, classification="failed_payment") == ["cus_dan"]
    assert len(listed(stocked, kind="duplicate_charge")) == 4
    assert len(listed(stocked, kind="duplicate_charge,failed_renewal")) == 5
    assert listed(stocked, status="resolved") == []


def test_opened_since_is_inclusive(stocked):
    """``opened_since`` keeps cases opened at or after the instant (offsets honoured)."""
    since = opened_at(3).isoformat()
    assert listed(stocked, opened_since=since, sort="opened_at") == ["cus_ann2", "cus_dan"]
    assert listed(stocked, opened_since="2026-11-04T01:00:00+01:00", sort="opened_at") == [
        "cus_ann2",
        "cus_dan",
    ]


def test_pages_walk_every_case_once_with_the_total(stocked):
    """Pages of two carry the total and a cursor until the last page, which has none."""
    query = parse_case_query({"limit": "2", "sort": "-at_stake"})
    seen, pages = [], 0
    for _ in range(10):  # bounded: a cursor that never advances fails, not hangs
        page = find_cases(stocked, query)
        assert page.total == 5
        seen += customers(page)
        pages += 1
        if page.next_cursor is None:
            break
        query = parse_case_query({"limit": "2", "sort": "-at_stake", "cursor": page.next_cursor})
    assert pages == 3
    assert seen == listed(stocked, sort="-at_stake")


def test_a_case_opened_between_pages_neither_shifts_nor_repeats_the_next_page(stocked):
    """Keyset, not offset: after an insert ahead of the cursor, page 2 starts where page 1
    ended; the new case is counted in the total."""
    params = {"limit": "2", "sort": "-opened_at"}
    first = find_cases(stocked, parse_case_query(params))
    newcomer = Person("cus_eve", "eve@example.com", "Eve Park")
    for body in duplicate_charge_events(newcomer, "new", amount=900):
        process_event(stocked, body, clock=lambda: opened_at(10))
    second = find_cases(stocked, parse_case_query(params | {"cursor": first.next_cursor}))
    assert customers(first) == ["cus_dan", "cus_ann2"]
    assert customers(second) == ["cus_cat", "cus_bob"]
    assert second.total == 6


def test_iter_cases_reads_every_match_in_batches(stocked):
    """``iter_cases`` with batches of two yields what one big page holds, in order."""
    query = parse_case_query({"sort": "opened_at", "currency": "usd"})
    batched = customers(islice(iter_cases(stocked, query, batch=2), 10))  # bounded
    assert batched == customers(find_cases(stocked, query)) == ["cus_ann", "cus_bob", "cus_dan"]


def test_a_cursor_only_continues_the_query_that_made_it(stocked):
    """A cursor used with another filter or sort is refused, naming ``cursor``."""
    page = find_cases(stocked, parse_case_query({"limit": "1"}))
    with pytest.raises(CaseQueryError) as error:
        parse_case_query({"limit": "1", "kind": "dispute", "cursor": page.next_cursor})
    assert error.value.parameter == "cursor"


def test_an_unknown_parameter_is_refused_by_name():
    """A typo is never ignored: it is named, with the parameters that exist."""
    with pytest.raises(UnknownParameterError) as error:
        parse_case_query({"sevrity": "high"})
    assert error.value.parameter == "sevrity"
    assert error.value.allowed == PARAMETERS


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("status", "closed"),
        ("status", "open,"),
        ("kind", "duplicate"),
        ("severity", "urgent"),
        ("classification", "fraud"),
        ("customer", "bob"),
        ("customer", "sub_123"),
        ("customer", "a\x00@example.com"),
        ("currency", "dollars"),
        ("opened_since", "yesterday"),
        ("updated_since", "2026-13-01"),
        ("sort", "amount"),
        ("limit", "0"),
        ("limit", str(MAX_LIMIT + 1)),
        ("limit", "ten"),
        ("cursor", "not-a-cursor"),
        ("cursor", "eyJxIjoiYSJ9"),  # base64 JSON, but not a cursor
    ],
)
def test_a_bad_value_is_refused_naming_its_parameter(parameter, value):
    """Every bad value is a ``CaseQueryError`` that names the parameter."""
    with pytest.raises(CaseQueryError) as error:
        parse_case_query({parameter: value})
    assert error.value.parameter == parameter
    assert not isinstance(error.value, UnknownParameterError)


def test_a_parameter_given_twice_is_refused():
    """``status=open&status=resolved`` is ambiguous: refused, not half-read."""
    with pytest.raises(CaseQueryError) as error:
        parse_case_query({"status": ["open", "resolved"]})
    assert error.value.parameter == "status"


def test_migration_copies_money_at_stake_of_existing_cases(stocked, tmp_path):
    """Cases stored before migration 0008 get their currency and money at stake from their
    finding when it runs (downgrade to 0007, upgrade again: the same values come back)."""
    with read_session(stocked) as session:
        before = session.execute(
            select(CaseRow.id, CaseRow.currency, CaseRow.at_stake_minor).order_by(CaseRow.id)
        ).all()
    config = alembic_config(stocked)
    command.downgrade(config, "0007")
    command.upgrade(config, "head")
    with read_session(stocked) as session:
        after = session.execute(
            select(CaseRow.id, CaseRow.currency, CaseRow.at_stake_minor).order_by(CaseRow.id)
        ).all()
    assert after == before
    assert {(currency, amount) for _, currency, amount in after} >= {("jpy", 700), ("eur", 3000)}
