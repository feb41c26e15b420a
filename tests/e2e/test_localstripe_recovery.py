"""A failed renewal recovered end to end against localstripe: the 3-D Secure card fails after
authentication, the case opens from localstripe's own webhooks, the customer gets the
recovery email (aiosmtpd), updates their card, the operator pays the invoice now, Stripe says
paid, and the case resolves itself. Links go out through the one stand-in endpoint localstripe
lacks, ``POST /v1/billing_portal/sessions`` (tests/worker/stripe_standin.py)."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from click.testing import CliRunner

from tests.e2e.test_localstripe_webhooks import (  # noqa: F401 - the fixture
    API_KEY,
    billing_ops_url,
    point_webhooks_at,
)
from tests.notifications.harness import SmtpServer
from tests.serving import join_events
from tests.worker.stripe_standin import StandIn, stripe_standin
from worker.cases import get_case, list_cases
from worker.cli import main
from worker.stripe_api import stripe_client

EMAIL_FROM = "Acme Billing <billing@acme.test>"
#: Stripe's test card that asks for 3-D Secure and, once authenticated, is declined
#: (docs.stripe.com/testing, "Regulatory cards"); localstripe models both.
AUTH_THEN_DECLINE = "4000008260003178"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def standin(localstripe_url: str) -> Iterator[StandIn]:
    with stripe_standin(localstripe_url) as server:
        yield server


@pytest.fixture
def settings(settings, standin, smtp):  # type: ignore[no-untyped-def]
    """The test store's settings with Stripe (through the stand-in) and email configured."""
    return replace(
        settings,
        stripe_api_key=API_KEY,
        stripe_api_base=standin.url,
        smtp_url=smtp.url,
        email_from=EMAIL_FROM,
    )


@pytest.fixture
def runtime(billing_ops_url, localstripe_url, standin, smtp, monkeypatch):  # noqa: F811
    """billing-ops receiving localstripe's webhooks; the CLI on the same store and Stripe."""
    base_url, runtime = billing_ops_url
    settings = runtime.settings
    for name, value in {
        "BILLING_OPS_DATA_DIR": str(settings.data_dir),
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "STRIPE_API_KEY": API_KEY,
        "STRIPE_API_BASE": standin.url,
        "SMTP_URL": smtp.url,
        "EMAIL_FROM": EMAIL_FROM,
    }.items():
        monkeypatch.setenv(name, value)
    point_webhooks_at(localstripe_url, f"{base_url}/webhooks/stripe")
    return runtime


def act(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["act", *args])
    return result.exit_code, result.output


def wait_for(condition, what: str, runtime=None, on_timeout=None):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        if runtime is not None:
            join_events(runtime.broker, 10)
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}" + (f": {on_timeout()}" if on_timeout else ""))


def card(client: Any, customer_id: str, number: str) -> str:
    """A card attached to the customer and made their default."""
    pm = client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123"},
        }
    )
    client.v1.payment_methods.attach(pm.id, params={"customer": customer_id})
    client.v1.customers.update(
        customer_id, params={"invoice_settings": {"default_payment_method": pm.id}}
    )
    return pm.id


def authenticate(localstripe_url: str, intent: Any) -> None:
    """localstripe's own 3-D Secure step: the customer authenticates (and the bank declines)."""
    data = urllib.parse.urlencode({"client_secret": intent.client_secret, "success": "true"})
    request = urllib.request.Request(
        f"{localstripe_url}/v1/payment_intents/{intent.id}/_authenticate",
        data=data.encode(),
        headers={"Authorization": "Basic " + base64.b64encode(f"{API_KEY}:".encode()).decode()},
    )
    with pytest.raises(urllib.error.HTTPError) as declined:
        urllib.request.urlopen(request, timeout=10)
    assert declined.value.code == 402  # authenticated, then the bank declined the charge


def failed_renewal(client: Any, localstripe_url: str, email: str) -> tuple[Any, Any]:
    """A monthly subscriber whose renewal invoice fails on the 3-D Secure card."""
    customer = client.v1.customers.create(params={"email": email, "name": "Rene Renew"})
    card(client, customer.id, "4242424242424242")
    product = client.v1.products.create(params={"name": "Pro"})
    plan = client.v1.plans.create(
        params={"amount": 2900, "currency": "usd", "interval": "month", "product": product.id}
    )
    sub = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"plan": plan.id}]}
    )
    card(client, customer.id, AUTH_THEN_DECLINE)
    client.v1.invoice_items.create(
        params={"customer": customer.id, "amount": 2900, "currency": "usd"}
    )
    invoice = client.v1.invoices.create(params={"customer": customer.id, "subscription": sub.id})
    invoice = client.v1.invoices.pay(invoice.id)
    authenticate(localstripe_url, client.v1.payment_intents.retrieve(invoice.payment_intent))
    return customer, invoice


def test_failed_renewal_is_recovered_and_paid_now(runtime, localstripe_url, smtp):
    """Failed renewal → recovery email → card updated → pay invoice now → paid, resolved."""
    client = stripe_client(API_KEY, localstripe_url)
    customer, invoice = failed_renewal(client, localstripe_url, "rene@example.com")

    def renewal_case():  # type: ignore[no-untyped-def]
        found = [c for c in list_cases(runtime.engine) if c["kind"] == "failed_renewal"]
        return found[0] if found else None

    case = wait_for(renewal_case, "the failed-renewal case", runtime)
    owed = f"{invoice.amount_due / 100:.2f} USD"
    from worker.notifications.outbox import list_rows

    mail = wait_for(
        lambda: [m for m in smtp.inbox.messages if m["To"] == "rene@example.com"],
        "the recovery email",
        on_timeout=lambda: (
            [(r.channel, r.reason, r.status, r.last_error) for r in list_rows(runtime.engine)]
            + [
                (
                    c["id"],
                    c["kind"],
                    c["status"],
                    [
                        (e["action"], e["note"])
                        for e in get_case(runtime.engine, c["id"])["timeline"]
                    ],
                )
                for c in list_cases(runtime.engine)
            ]
        ),
    )
    assert "/p/session/test_standin_" in mail[0].get_body(("plain",)).get_content()

    card(client, customer.id, "4242424242424242")  # the customer updated their card
    number = str(case["id"])
    code, plan = act(number, "pay_invoice")
    assert code == 0, plan
    assert f"pay invoice {invoice.id} ({owed})" in plan
    code, done = act(number, "pay_invoice", "--yes", "--by", "olga")
    assert code == 0, done
    assert f"done: paid invoice {invoice.id} (paid)" in done
    assert client.v1.invoices.retrieve(invoice.id).status == "paid"

    resolved = wait_for(
        lambda: get_case(runtime.engine, case["id"])["status"] == "resolved",
        "the case to resolve on invoice.payment_succeeded",
        runtime,
    )
    assert resolved
    doc = get_case(runtime.engine, case["id"])
    assert [(a["actor"], a["action"], a["result"]) for a in doc["actions"]] == [
        ("olga", "pay_invoice", "succeeded")
    ]
    assert f"paid invoice {invoice.id} (paid) — by olga" in doc["handoff"]["action_taken"]
    code, again = act(number, "pay_invoice", "--target", invoice.id, "--yes")
    assert code == 0 and "already done, nothing sent" in again


def test_payment_link_is_emailed_once_and_printed_fresh(runtime, localstripe_url, smtp, standin):
    """send_payment_link emails a portal session once (a repeat sends nothing); --print
    makes a fresh session each time and stores none of them."""
    client = stripe_client(API_KEY, localstripe_url)
    customer, _ = failed_renewal(client, localstripe_url, "lena@example.com")
    case = wait_for(
        lambda: next(
            (c for c in list_cases(runtime.engine) if c["customer"]["id"] == customer.id), None
        ),
        "the failed-renewal case",
        runtime,
    )
    number = str(case["id"])

    def links_sent():  # type: ignore[no-untyped-def]
        # The recovery email of the case goes out on its own; the operator's has its subject.
        return [
            m
            for m in smtp.inbox.messages
            if m["To"] == "lena@example.com" and m["Subject"] == "Manage your billing"
        ]

    code, plan = act(number, "send_payment_link")
    assert code == 0, plan
    assert "link:        billing portal (email)" in plan
    code, sent = act(number, "send_payment_link", "--yes", "--by", "olga")
    assert code == 0, sent
    assert "emailed a billing-portal link for " in sent and "l***@example.com" in sent
    code, again = act(number, "send_payment_link", "--target", customer.id, "--yes")
    assert code == 0 and "already done, nothing sent" in again
    mails = links_sent()
    assert len(mails) == 1
    assert "/p/session/test_standin_" in mails[-1].get_body(("plain",)).get_content()

    urls = []
    for _ in range(2):
        code, printed = act(number, "send_payment_link", "--print", "--yes", "--by", "olga")
        assert code == 0, printed
        urls.append(printed.strip().splitlines()[-1])
    assert urls[0] != urls[1] and all("/p/session/test_standin_" in u for u in urls)
    shown = CliRunner().invoke(main, ["cases", "show", number, "--json"]).output
    assert not any(u in shown for u in urls)
    modes = [a["action"] for a in json.loads(shown)["actions"]]
    assert modes == [
        "send_payment_link_email",
        "send_payment_link_print",
        "send_payment_link_print",
    ]
