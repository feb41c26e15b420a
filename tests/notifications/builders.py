"""Stripe objects for notification scenarios (current API shape), built in code."""

from __future__ import annotations

from typing import Any

from tests.support import customer, envelope, subscription

T0 = 1_769_817_600  # a renewal date
EMAIL = "jane.doe@example.com"
HOSTED = "https://invoice.stripe.com/i/acct_1Test/test_in_1"


def invoice(
    invoice_id: str = "in_1",
    customer_id: str = "cus_1",
    sub_id: str = "sub_1",
    *,
    created: int = T0,
    status: str = "open",
    attempt_count: int = 1,
    amount: int = 2900,
    next_payment_attempt: int | None = T0 + 3 * 86_400,
    customer_email: str | None = None,
    billing_reason: str = "subscription_cycle",
) -> dict[str, Any]:
    paid = status == "paid"
    return {
        "id": invoice_id,
        "object": "invoice",
        "amount_due": amount,
        "amount_paid": amount if paid else 0,
        "amount_remaining": 0 if paid else amount,
        "attempt_count": attempt_count,
        "attempted": attempt_count > 0,
        "billing_reason": billing_reason,
        "collection_method": "charge_automatically",
        "created": created,
        "currency": "usd",
        "customer": customer_id,
        "customer_email": customer_email,
        "customer_name": None,
        "hosted_invoice_url": HOSTED,
        "next_payment_attempt": None if paid else next_payment_attempt,
        "parent": {
            "type": "subscription_details",
            "subscription_details": {"metadata": {}, "subscription": sub_id},
        },
        "status": status,
        "status_transitions": {"paid_at": created + 3600 if paid else None},
        "lines": {"object": "list", "data": [], "has_more": False},
        "total": amount,
    }


def charge(
    charge_id: str,
    customer_id: str = "cus_1",
    *,
    created: int,
    amount: int = 2900,
    status: str = "succeeded",
    payment_intent: str | None = None,
) -> dict[str, Any]:
    succeeded = status == "succeeded"
    return {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount if succeeded else 0,
        "amount_refunded": 0,
        "captured": succeeded,
        "created": created,
        "currency": "usd",
        "customer": customer_id,
        "paid": succeeded,
        "payment_intent": payment_intent or f"pi_{charge_id}",
        "payment_method_details": {
            "type": "card",
            "card": {
                "brand": "visa",
                "last4": "4242",
                "exp_month": 12,
                "exp_year": 2030,
                "fingerprint": "fp_visa4242",
            },
        },
        "refunded": False,
        "refunds": {"object": "list", "data": [], "has_more": False},
        "status": status,
    }


def failed_renewal_events(
    *, email: str = EMAIL, name: str = "Jane Doe", attempt: int = 1
) -> list[str]:
    """Customer, active subscription, failed renewal invoice (and its failed charge)."""
    return [
        envelope("evt_cus", "customer.created", customer("cus_1", email, created=T0 - 90 * 86_400,
                 name=name), T0 - 90 * 86_400),
        envelope("evt_sub", "customer.subscription.created",
                 subscription("sub_1", "cus_1", created=T0 - 60 * 86_400, product="prod_pro"),
                 T0 - 60 * 86_400),
        envelope("evt_chg", "charge.failed",
                 charge("ch_fail", created=T0 + 3500, status="failed"), T0 + 3500),
        envelope(f"evt_inv_{attempt}", "invoice.payment_failed",
                 invoice(attempt_count=attempt), T0 + 3600 * attempt),
    ]  # fmt: skip


def failed_attempt_event(
    attempt: int,
    *,
    event_type: str = "invoice.payment_failed",
    next_payment_attempt: int | None = T0 + 30 * 86_400,
    status: str = "open",
    invoice_id: str = "in_1",
    sub_id: str = "sub_1",
) -> str:
    """Attempt ``attempt`` of a renewal invoice failing, one day after the previous one."""
    body = invoice(invoice_id, sub_id=sub_id, attempt_count=attempt, status=status,
                   next_payment_attempt=next_payment_attempt)  # fmt: skip
    return envelope(f"evt_{invoice_id}_{event_type}_{attempt}", event_type, body,
                    T0 + 3600 + (attempt - 1) * 86_400)  # fmt: skip


def unpaid_subscription_event(created: int = T0 + 15 * 86_400) -> str:
    """Stripe's retries are over and its settings leave the subscription unpaid."""
    sub = subscription("sub_1", "cus_1", created=T0 - 60 * 86_400, status="unpaid",
                       product="prod_pro")  # fmt: skip
    return envelope("evt_sub_unpaid", "customer.subscription.updated", sub, created)


def invoice_paid_event(created: int = T0 + 86_400) -> str:
    return envelope("evt_paid", "invoice.paid", invoice(status="paid"), created)


def duplicate_charge_events(name: str = "Bob Stone", email: str = "bob@example.com") -> list[str]:
    """One customer charged the same amount twice, two minutes apart."""
    return [
        envelope("evt_bob", "customer.created", customer("cus_1", email, created=T0, name=name),
                 T0),
        envelope("evt_ch1", "charge.succeeded", charge("ch_1", created=T0 + 60), T0 + 60),
        envelope("evt_ch2", "charge.succeeded", charge("ch_2", created=T0 + 180), T0 + 180),
    ]  # fmt: skip


def expired_first_payment_events() -> list[str]:
    """A first payment that needed 3-D Secure and was never completed: after 23 hours Stripe
    moves the subscription to incomplete_expired and voids its invoice."""
    sub = subscription("sub_new", "cus_1", created=T0, status="incomplete", product="prod_team")
    sub["latest_invoice"] = "in_first"
    first = invoice("in_first", "cus_1", "sub_new", billing_reason="subscription_create",
                    next_payment_attempt=None)  # fmt: skip
    expired = {**sub, "status": "incomplete_expired"}
    voided = {**first, "status": "void", "amount_remaining": 0}
    return [
        envelope("evt_cus", "customer.created", customer("cus_1", EMAIL, created=T0), T0),
        envelope("evt_sub", "customer.subscription.created", sub, T0),
        envelope("evt_par", "invoice.payment_action_required", first, T0 + 60),
        envelope("evt_exp", "customer.subscription.updated", expired, T0 + 23 * 3600),
        envelope("evt_void", "invoice.voided", voided, T0 + 23 * 3600),
    ]
