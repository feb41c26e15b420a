"""The billing flows localstripe can drive, end to end: the emulator creates the objects and
posts its own signed webhooks (API version 2017-08-15: no ``billing_reason``, ``date`` beside
``created``); each flow ends with the case a support lead would expect, or with none and the
test says why.

What localstripe does differently from Stripe, and each test relies on (read in its source,
``localstripe/resources.py``): paying an invoice with a card that is declined outright sends no
failure event at all, so failures are driven through 3-D Secure (``/_authenticate``); a
subscription's status changes (``past_due``) send no ``customer.subscription.updated``; a trial
leaves the subscription ``incomplete`` without an invoice; deleting a customer cancels nothing.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from tests.e2e.test_localstripe_webhooks import (  # noqa: F401 - the fixture
    API_KEY,
    billing_ops_url,
    point_webhooks_at,
)
from tests.serving import join_events
from worker.cases import SYSTEM_ACTOR, get_case, list_cases
from worker.store import events as event_log
from worker.stripe_api import stripe_client

#: Stripe's test cards, as localstripe knows them (``PaymentMethod._requires_authentication``,
#: ``_charging_is_declined``; docs.stripe.com/testing#regulatory-cards).
VISA = "4242424242424242"
THREE_D_SECURE = "4000002500003155"  # authentication required, then the charge succeeds
THREE_D_SECURE_DECLINED = "4000008260003178"  # authentication required, then declined
DECLINED = "4000000000000341"  # attaches, every charge declined


@pytest.fixture
def flows(billing_ops_url, localstripe_url):  # noqa: F811
    """(Stripe client on localstripe, billing-ops runtime), webhooks pointed at billing-ops."""
    base_url, runtime = billing_ops_url
    point_webhooks_at(localstripe_url, f"{base_url}/webhooks/stripe")
    return stripe_client(API_KEY, localstripe_url), runtime


def customer_with_card(client: Any, email: str, number: str) -> tuple[Any, Any]:
    """A customer paying by default with the card ``number``, and a monthly plan."""
    customer = client.v1.customers.create(params={"email": email, "name": "Flow Test"})
    use_card(client, customer.id, number)
    product = client.v1.products.create(params={"name": "Pro"})
    plan = client.v1.plans.create(
        params={"amount": 2900, "currency": "usd", "interval": "month", "product": product.id}
    )
    return customer, plan


def use_card(client: Any, customer_id: str, number: str) -> None:
    """Attach the card ``number`` and make it the customer's default payment method."""
    card = client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123"},
        }
    )
    client.v1.payment_methods.attach(card.id, params={"customer": customer_id})
    client.v1.customers.update(
        customer_id, params={"invoice_settings": {"default_payment_method": card.id}}
    )


def authenticate(localstripe_url: str, intent: Any, *, success: bool) -> int:
    """localstripe's stand-in for the customer completing (or failing) 3-D Secure: the HTTP
    status it answers (402 when the charge after a successful authentication is declined)."""
    data = urllib.parse.urlencode(
        {"client_secret": intent.client_secret, "success": str(success).lower()}
    ).encode()
    request = urllib.request.Request(
        f"{localstripe_url}/v1/payment_intents/{intent.id}/_authenticate",
        data=data,
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def subscribe_and_renew_with(client: Any, localstripe_url: str, email: str) -> tuple[Any, str]:
    """A paid monthly subscription whose next invoice (created now, as a renewal) is paid with
    a card that needs 3-D Secure and is then declined: (subscription, renewal invoice id)."""
    customer, plan = customer_with_card(client, email, VISA)
    subscription = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"plan": plan.id}]}
    )
    assert subscription.status == "active"
    use_card(client, customer.id, THREE_D_SECURE_DECLINED)
    renewal = client.v1.invoices.create(
        params={"customer": customer.id, "subscription": subscription.id}
    )
    renewal = client.v1.invoices.pay(renewal.id)
    intent = client.v1.payment_intents.retrieve(renewal.payment_intent)
    assert intent.status == "requires_action"
    assert authenticate(localstripe_url, intent, success=True) == 402  # then declined
    return subscription, renewal.id


def settled(runtime: Any, customer_id: str, *event_types: str) -> list[str]:
    """Wait until billing-ops has processed every one of ``event_types`` for the customer;
    the types of everything processed for it."""
    deadline = time.monotonic() + 30
    while True:
        join_events(runtime.broker, 10)
        seen = [
            e.type
            for e in event_log.list_events(runtime.engine, event_log.PROCESSED, limit=1000)
            if e.customer_id == customer_id
        ]
        if set(event_types) <= set(seen):
            return seen
        if time.monotonic() > deadline:
            pytest.fail(f"events {event_types} for {customer_id} not processed; saw {seen}")
        time.sleep(0.2)


def cases_of(runtime: Any, customer_id: str) -> dict[str, dict[str, Any]]:
    """The customer's unresolved cases by kind, once every resolved one is shown to have been
    resolved by billing-ops itself.

    localstripe stamps a whole flow with one second and gives a renewal its subscription's
    first period, so while part of a flow is still on its way (Stripe does not deliver in
    order, and workers run concurrently) an intermediate state can read like another kind
    (a renewal like an unpaid first invoice, a 3-D Secure failure's cancellation like churn).
    Such a case is resolved by billing-ops as soon as the rest arrives; what must hold is the
    open cases, and that no such case is left for an operator."""
    cases = [case for case in list_cases(runtime.engine) if case["customer"]["id"] == customer_id]
    resolved = [case for case in cases if case["status"] == "resolved"]
    assert all(case["status_by"] == SYSTEM_ACTOR for case in resolved), resolved
    return {case["kind"]: case for case in cases if case["status"] != "resolved"}


def test_renewal_failing_after_3d_secure_opens_a_failed_renewal(flows, localstripe_url):
    """The renewal invoice (no billing_reason in 2017-08-15) fails after 3-D Secure: a
    failed_renewal case on it, the portal link first (Stripe retries a card_declined), and
    the timeline shows the API version of the event that opened it."""
    client, runtime = flows
    subscription, renewal_id = subscribe_and_renew_with(client, localstripe_url, "renew@e.com")
    settled(runtime, subscription.customer, "invoice.payment_failed")

    cases = cases_of(runtime, subscription.customer)
    assert set(cases) == {"failed_renewal"}
    case = cases["failed_renewal"]
    assert case["classification"] == "failed_payment"
    assert case["subjects"] == [renewal_id, subscription.id]
    assert case["recommended_action"]["type"] == "send_portal_link"
    timeline = get_case(runtime.engine, case["id"])["timeline"]
    assert timeline[0]["action"] == "opened"
    assert timeline[0]["api_version"] == "2017-08-15"


def test_card_declined_on_a_new_subscription_opens_no_case_yet(flows):
    """A declined first payment leaves the subscription incomplete. No case: Stripe gives a
    first invoice 23 hours before it expires the subscription, and billing-ops opens the
    incomplete_checkout case at incomplete_expired (localstripe never expires it, and sends
    no payment failure for a charge declined outright)."""
    client, runtime = flows
    customer, plan = customer_with_card(client, "declined@e.com", DECLINED)
    subscription = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"plan": plan.id}]}
    )
    assert subscription.status == "incomplete"
    settled(runtime, customer.id, "customer.subscription.created", "invoice.created")

    assert cases_of(runtime, customer.id) == {}


def test_3d_secure_failure_then_deleted_subscription_is_an_incomplete_checkout(
    flows, localstripe_url
):
    """The first payment fails 3-D Secure and localstripe deletes the subscription: the
    person tried to pay and never could, so an incomplete_checkout case (a fresh checkout
    link), not churn: a subscription that never started was not lost."""
    client, runtime = flows
    customer, plan = customer_with_card(client, "threeds@e.com", THREE_D_SECURE)
    subscription = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"plan": plan.id}]}
    )
    first = client.v1.invoices.retrieve(subscription.latest_invoice)
    intent = client.v1.payment_intents.retrieve(first.payment_intent)
    assert authenticate(localstripe_url, intent, success=False) == 200
    assert client.v1.subscriptions.retrieve(subscription.id).status == "canceled"
    settled(runtime, customer.id, "invoice.payment_failed", "customer.subscription.deleted")

    cases = cases_of(runtime, customer.id)
    assert set(cases) == {"incomplete_checkout"}
    case = cases["incomplete_checkout"]
    assert case["classification"] == "failed_payment"
    assert case["subjects"] == [subscription.id, first.id]
    assert case["recommended_action"]["type"] == "contact_customer"


def test_cancel_of_a_past_due_subscription(flows, localstripe_url):
    """The renewal failed, then the subscription is canceled: a churn case for the
    cancellation, and the failed renewal stays open with the invoice link, because Stripe
    stops collecting a canceled subscription's invoices (it no longer retries)."""
    client, runtime = flows
    subscription, renewal_id = subscribe_and_renew_with(client, localstripe_url, "pastdue@e.com")
    assert client.v1.subscriptions.retrieve(subscription.id).status == "past_due"
    client.v1.subscriptions.cancel(subscription.id)
    settled(
        runtime, subscription.customer, "invoice.payment_failed", "customer.subscription.deleted"
    )

    cases = cases_of(runtime, subscription.customer)
    assert set(cases) == {"failed_renewal", "churn_signal"}
    assert cases["churn_signal"]["subjects"] == [subscription.id]
    renewal = cases["failed_renewal"]
    assert renewal["subjects"] == [renewal_id, subscription.id]
    assert renewal["recommended_action"]["type"] == "send_invoice_link"
    assert "canceled" in renewal["reasoning"]


def test_trial_opens_no_case(flows):
    """A 14-day trial owes nothing yet: no invoice, no case (localstripe leaves a trial
    ``incomplete`` instead of ``trialing``; billing-ops flags an incomplete subscription only
    once Stripe expires it)."""
    client, runtime = flows
    customer, plan = customer_with_card(client, "trial@e.com", VISA)
    subscription = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"plan": plan.id}], "trial_period_days": 14}
    )
    assert subscription.latest_invoice is None
    settled(runtime, customer.id, "customer.subscription.created")

    assert cases_of(runtime, customer.id) == {}


def test_customer_deleted_opens_no_case(flows):
    """Deleting a paying customer is the merchant's own act: no case from customer.deleted.
    (Stripe also cancels the customer's subscriptions and sends customer.subscription.deleted
    for each, which are churn signals; localstripe cancels nothing.)"""
    client, runtime = flows
    customer, plan = customer_with_card(client, "deleted@e.com", VISA)
    client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"plan": plan.id}]})
    client.v1.customers.delete(customer.id)
    settled(runtime, customer.id, "invoice.payment_succeeded", "customer.deleted")

    assert cases_of(runtime, customer.id) == {}
