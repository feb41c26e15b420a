"""A store stocked with cases of several people, kinds, severities and currencies, made by
running Stripe events through the real pipeline (for the case-list, export and API tests)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from tests.notifications.builders import charge, invoice
from tests.support import customer, envelope, subscription
from worker.pipeline import process_event

T0 = 1_764_000_000
OPENED_0 = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Person:
    customer_id: str
    email: str
    name: str


def duplicate_charge_events(
    person: Person, tag: str, *, amount: int, currency: str = "usd", t: int = T0
) -> list[str]:
    """``person`` charged ``amount`` twice within two minutes: one ``duplicate_charge`` case."""
    first = charge(f"ch_{tag}_1", person.customer_id, created=t + 60, amount=amount)
    second = charge(f"ch_{tag}_2", person.customer_id, created=t + 180, amount=amount)
    for body in (first, second):
        body["currency"] = currency
    who = customer(person.customer_id, person.email, created=t, name=person.name)
    return [
        envelope(f"evt_{tag}_cus", "customer.created", who, t),
        envelope(f"evt_{tag}_ch1", "charge.succeeded", first, t + 60),
        envelope(f"evt_{tag}_ch2", "charge.succeeded", second, t + 180),
    ]


def failed_renewal_events(person: Person, tag: str, *, amount: int, t: int = T0) -> list[str]:
    """``person``'s monthly renewal of ``amount`` failed: one ``failed_renewal`` case."""
    sub_id, invoice_id = f"sub_{tag}", f"in_{tag}"
    who = customer(person.customer_id, person.email, created=t - 90 * 86_400, name=person.name)
    sub = subscription(sub_id, person.customer_id, created=t - 60 * 86_400, amount=amount)
    bill = invoice(invoice_id, person.customer_id, sub_id, created=t, amount=amount)
    return [
        envelope(f"evt_{tag}_cus", "customer.created", who, t - 90 * 86_400),
        envelope(f"evt_{tag}_sub", "customer.subscription.created", sub, t - 60 * 86_400),
        envelope(f"evt_{tag}_inv", "invoice.payment_failed", bill, t + 3600),
    ]


ANN = Person("cus_ann", "ann@example.com", "Ann Lee")
ANN_AGAIN = Person("cus_ann2", "ann@example.com", "Ann Lee")  # a second record, same email
BOB = Person("cus_bob", "bob@example.com", "Bob Stone")
CAT = Person("cus_cat", "cat@example.com", "Cat Ng")
DAN = Person("cus_dan", "dan@example.com", "Dan Roe")

#: (person, kind of story, amount, currency), opened a day apart in this order.
STOCK = (
    (ANN, "charge", 5_000, "usd"),
    (BOB, "charge", 120_000, "usd"),
    (CAT, "charge", 3_000, "eur"),
    (ANN_AGAIN, "charge", 700, "jpy"),
    (DAN, "renewal", 2_900, "usd"),
)


def opened_at(index: int) -> datetime:
    return OPENED_0 + timedelta(days=index)


def stock_cases(engine: Engine) -> None:
    """One case per ``STOCK`` line, the i-th opened at ``opened_at(i)``."""
    for index, (person, story, amount, currency) in enumerate(STOCK):
        tag = f"{index}"
        events = (
            duplicate_charge_events(person, tag, amount=amount, currency=currency)
            if story == "charge"
            else failed_renewal_events(person, tag, amount=amount)
        )
        for body in events:
            process_event(engine, body, clock=lambda index=index: opened_at(index))
