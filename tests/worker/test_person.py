"""Who a person is: every customer record linked to another through a shared email, however long
the chain (``worker.projection.find_person``), and when new records leave them unchanged."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session

from rules import ObjectRecord, parse_event, records_from_event
from worker.projection import Person, apply_record, find_person, same_person_after

NOW = datetime(2026, 1, 1, tzinfo=UTC)
EVENTS = Path(__file__).parents[1] / "fixtures" / "events"


def customer(customer_id: str, email: str | None) -> ObjectRecord:
    """A customer object record as the projection stores it, from a customer.created event."""
    payload = json.loads((EVENTS / "customer.created__current.json").read_text())
    payload["id"] = f"evt_{customer_id}_{email}"
    payload["data"]["object"].update(id=customer_id, email=email)
    [record] = records_from_event(parse_event(payload))
    return record


def test_a_person_is_every_customer_a_chain_of_shared_emails_reaches(engine):
    """From cus_A (b@) to cus_B (b@, c@) to cus_C (c@): two links away is the same person."""
    with Session(engine) as session, session.begin():
        apply_record(session, customer("cus_A", "b@e.com"), "cus_A", NOW)
        apply_record(session, customer("cus_B", "b@e.com"), "cus_B", NOW)
        apply_record(session, customer("cus_B2", "c@e.com"), "cus_B", NOW)  # another row of cus_B
        apply_record(session, customer("cus_C", "c@e.com"), "cus_C", NOW)
        apply_record(session, customer("cus_D", "d@e.com"), "cus_D", NOW)
    with Session(engine) as session:
        person = find_person(session, ["cus_A"], [])
    assert person == Person(
        customer_ids=frozenset({"cus_A", "cus_B", "cus_C"}),
        emails=frozenset({"b@e.com", "c@e.com"}),
    )


def test_records_naming_only_the_persons_ids_and_emails_leave_them_the_same():
    person = Person(frozenset({"cus_A"}), frozenset({"a@e.com"}))
    assert same_person_after(person, [customer("cus_A", "a@e.com")], ["cus_A"])
    assert same_person_after(person, [customer("cus_A", None)], ["cus_A"])


def test_a_record_with_a_new_email_or_customer_may_link_someone_new():
    person = Person(frozenset({"cus_A"}), frozenset({"a@e.com"}))
    assert not same_person_after(person, [customer("cus_A", "new@e.com")], ["cus_A"])
    assert not same_person_after(person, [customer("cus_N", "a@e.com")], ["cus_N"])
