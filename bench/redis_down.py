"""How fast the webhook edge answers 503 when Redis cannot take a message.

Two outages, on loopback only: nothing listening on the Redis port (connection refused), and a
server whose accept backlog is full so the connect never completes. Prints the latency of the
503 answers; the connect timeout (``worker.broker.EDGE_CONNECT_TIMEOUT_SECONDS``) bounds the
second case.

    .venv/bin/python bench/redis_down.py
"""

from __future__ import annotations

import contextlib
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support import event_body, free_port, sign  # noqa: E402
from webhooks import create_app  # noqa: E402
from worker.logs import configure_logging  # noqa: E402
from worker.settings import Settings  # noqa: E402

SECRET = "whsec_bench_redis_down"


def measure(redis_url: str, rounds: int) -> list[float]:
    """Milliseconds per POST of a signed event while Redis is out."""
    data_dir = Path(tempfile.mkdtemp(prefix="billing-ops-bench-"))
    settings = Settings(
        data_dir=data_dir,
        webhook_secrets=(SECRET,),
        database_url=f"sqlite:///{data_dir / 'x.db'}",
        redis_url=redis_url,
        log_format="json",
    )
    client = create_app(settings).test_client()
    body = event_body()
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.post(
            "/webhooks/stripe", data=body, headers={"Stripe-Signature": sign(body, SECRET)}
        )
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 503, response.status_code
    return timings


def full_backlog_port() -> tuple[int, list[socket.socket]]:
    """A loopback port whose listen backlog is full: connects to it hang."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    held = [server]
    for _ in range(8):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        held.append(filler)
    return port, held


def report(name: str, timings: list[float]) -> None:
    print(
        f"{name:<26} n={len(timings):<4} p50 {statistics.median(timings):7.2f} ms"
        f"   max {max(timings):7.2f} ms"
    )


def main() -> None:
    configure_logging("json")
    import logging

    logging.disable(logging.CRITICAL)
    report("connection refused", measure(f"redis://127.0.0.1:{free_port()}/0", 200))
    port, held = full_backlog_port()
    try:
        report("connect never completes", measure(f"redis://127.0.0.1:{port}/0", 10))
    finally:
        for sock in held:
            sock.close()


if __name__ == "__main__":
    main()
