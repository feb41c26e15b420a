"""Objects per second that ``billing-ops sync`` pulls from localstripe into the store.

Starts its own localstripe on a free port, builds an account through the API (``--customers``
customers, each with a card and a monthly subscription: per customer a customer, a
subscription, an invoice, a charge and a payment method), then times ``run_sync`` on a fresh
store: once cold (every object new), once again (nothing changes). Prints one line per run.

    .venv/bin/python bench/sync.py [--customers 300] [--rate 0] [--database-url URL]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import start_localstripe  # noqa: E402
from worker.store.db import make_engine, upgrade_database  # noqa: E402
from worker.stripe_api import stripe_client  # noqa: E402
from worker.sync.client import paced_client  # noqa: E402
from worker.sync.run import run_sync  # noqa: E402

API_KEY = "sk_test_bench_sync"


def build(url: str, customers: int) -> None:
    client = stripe_client(API_KEY, url)
    product = client.v1.products.create(params={"name": "Pro"})
    plan = client.v1.plans.create(
        params={"amount": 2900, "currency": "usd", "interval": "month", "product": product.id}
    )
    for index in range(customers):
        customer = client.v1.customers.create(
            params={"email": f"bench{index}@example.com", "name": f"Bench {index}"}
        )
        card = client.v1.payment_methods.create(
            params={
                "type": "card",
                "card": {
                    "number": "4242424242424242",
                    "exp_month": 12,
                    "exp_year": 2031,
                    "cvc": "123",
                },
            }
        )
        client.v1.payment_methods.attach(card.id, params={"customer": customer.id})
        client.v1.customers.update(
            customer.id, params={"invoice_settings": {"default_payment_method": card.id}}
        )
        client.v1.subscriptions.create(
            params={"customer": customer.id, "items": [{"plan": plan.id}]}
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--rate", type=float, default=0.0, help="requests/s cap; 0 = none")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    process, url = start_localstripe()
    try:
        started = time.monotonic()
        build(url, args.customers)
        print(f"account built: {args.customers} customers in {time.monotonic() - started:.1f}s")
        data_dir = Path(tempfile.mkdtemp(prefix="bench-sync-"))
        engine = make_engine(args.database_url or f"sqlite:///{data_dir / 'billing-ops.db'}")
        upgrade_database(engine, data_dir)
        since = int(time.time()) - 90 * 86400
        for label in ("cold", "again"):
            client, http = paced_client(API_KEY, url, rate=args.rate)
            summary = run_sync(engine, client, http, since=since)
            total = sum(summary.objects.values())
            print(
                f"{label}: {total} objects in {summary.seconds:.2f}s = "
                f"{total / summary.seconds:.0f} objects/s; {summary.line()}"
            )
        engine.dispose()
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    main()
