"""Helpers the tests share: independent signing, fixtures on disk, free ports."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SECRET = "whsec_test_secret_for_billing_ops"


def sign(body: str | bytes, secret: str = SECRET, timestamp: int | None = None) -> str:
    """A Stripe-Signature header computed here, independently of the stripe library."""
    raw = body.encode() if isinstance(body, str) else body
    ts = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{ts}.".encode() + raw, hashlib.sha256).hexdigest()
    return f"t={ts},v1={digest}"


def event_fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / "events" / name).read_text())


def event_body(
    event_id: str = "evt_test_1", event_type: str = "customer.created", **obj: Any
) -> str:
    """A small, well-formed Stripe event envelope."""
    data = {"id": "cus_test_1", "object": "customer", "email": "jane@example.com", **obj}
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "api_version": "2025-03-31.basil",
            "created": 1_764_000_000,
            "livemode": False,
            "type": event_type,
            "data": {"object": data},
        }
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def envelope(
    event_id: str, event_type: str, obj: dict[str, Any], created: int, **extra: Any
) -> str:
    """A Stripe event envelope (current API shape) around ``obj``."""
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "api_version": "2025-03-31.basil",
            "created": created,
            "livemode": False,
            "pending_webhooks": 1,
            "type": event_type,
            "data": {"object": obj, **extra},
        }
    )


def subscription(
    sub_id: str,
    customer: str,
    *,
    created: int,
    product: str = "prod_pro",
    price: str = "price_pro_monthly",
    amount: int = 2900,
    quantity: int = 1,
    status: str = "active",
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A subscription object in the current API shape (periods on the items)."""
    return {
        "id": sub_id,
        "object": "subscription",
        "customer": customer,
        "status": status,
        "created": created,
        "start_date": created,
        "cancel_at_period_end": False,
        "cancel_at": None,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "metadata": metadata or {},
        "latest_invoice": None,
        "default_payment_method": "pm_card_visa",
        "trial_start": None,
        "trial_end": None,
        "items": {
            "object": "list",
            "data": [
                {
                    "id": f"si_{sub_id}",
                    "object": "subscription_item",
                    "quantity": quantity,
                    "current_period_start": created,
                    "current_period_end": created + 30 * 86400,
                    "price": {
                        "id": price,
                        "object": "price",
                        "product": product,
                        "unit_amount": amount,
                        "currency": "usd",
                        "recurring": {"interval": "month", "interval_count": 1},
                    },
                }
            ],
        },
    }


def customer(
    customer_id: str, email: str, *, created: int, name: str = "Jane Doe"
) -> dict[str, Any]:
    return {
        "id": customer_id,
        "object": "customer",
        "email": email,
        "name": name,
        "created": created,
        "invoice_settings": {"default_payment_method": "pm_card_visa"},
        "default_source": None,
        "metadata": {},
    }


def duplicate_subscription_story(
    email: str = "a@example.com", t0: int = 1_764_000_000
) -> list[str]:
    """A customer, then two subscriptions to the same product a minute apart."""
    return [
        envelope("evt_1", "customer.created", customer("cus_1", email, created=t0), t0),
        envelope(
            "evt_2", "customer.subscription.created", subscription("sub_1", "cus_1", created=t0), t0
        ),
        envelope(
            "evt_3",
            "customer.subscription.created",
            subscription("sub_2", "cus_1", created=t0 + 60),
            t0 + 60,
        ),
    ]


def subscribe_twice(client: Any, email: str, name: str) -> tuple[Any, Any]:
    """Through the Stripe API (localstripe in tests): a customer with a card on file and two
    live subscriptions to the same monthly plan."""
    customer = client.v1.customers.create(params={"email": email, "name": name})
    card = client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"},
        }
    )
    client.v1.payment_methods.attach(card.id, params={"customer": customer.id})
    client.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": card.id}}
    )
    product = client.v1.products.create(params={"name": "Pro"})
    plan = client.v1.plans.create(
        params={"amount": 2900, "currency": "usd", "interval": "month", "product": product.id}
    )
    params = {"customer": customer.id, "items": [{"plan": plan.id}]}
    return (
        client.v1.subscriptions.create(params=params),
        client.v1.subscriptions.create(params=params),
    )


def stop_group(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM a child's whole session (it was started with ``start_new_session``), SIGKILL
    it if it has not exited within ``timeout`` seconds."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


LOCALSTRIPE = Path(sys.executable).parent / "localstripe"


def start_localstripe() -> tuple[subprocess.Popen[bytes], str]:
    """The independent Stripe emulator, localstripe, on a free loopback port, once it answers.
    Raises RuntimeError when it does not start within 30 s."""
    port = free_port()
    process = subprocess.Popen(
        [str(LOCALSTRIPE), "--port", str(port), "--from-scratch"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/v1/customers", timeout=1)
        except urllib.error.HTTPError:
            return process, url  # it answers (401 without a key): up
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("localstripe did not start") from None
            time.sleep(0.1)
            continue
        return process, url


def waits_for_advisory_lock(engine: Any, key: str) -> bool:
    """Whether a session of this PostgreSQL database waits for the advisory lock of ``key``
    (``worker.store.db.lock_id``): a worker blocked there is inside its write transaction.
    pg_locks shows a bigint key as its high and low 32 bits (classid, objid; objsubid 1)."""
    from sqlalchemy import text

    from worker.store.db import lock_id

    unsigned = lock_id(key) & 0xFFFF_FFFF_FFFF_FFFF
    with engine.connect() as connection:
        waiting = connection.scalar(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND objsubid = 1 AND classid = :high AND objid = :low AND database ="
                " (SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            {"high": unsigned >> 32, "low": unsigned & 0xFFFF_FFFF},
        )
    return bool(waiting)
