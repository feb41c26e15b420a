"""``/metrics`` of a real ``serve`` adds up every process: the web's counters and the Dramatiq
worker processes', through prometheus-client's multiprocess files, and keeps a dead worker's
counts."""

from __future__ import annotations

import os
import signal
import subprocess
import urllib.request

from tests.metrics import samples, value
from tests.serving import BILLING_OPS, http_status, post_event, serving, wait_for
from tests.support import (
    SECRET,
    duplicate_subscription_story,
    envelope,
    event_body,
    free_port,
    stop_group,
    subscription,
)
from worker.broker import build_broker, event_message

SUB_CREATED = "customer.subscription.created"


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def _processed(text: str) -> float:
    return sum(
        v for (name, _), v in samples(text).items() if name == "billing_ops_events_processed_total"
    )


def test_worker_metrics_reach_the_web_scrape_and_survive_a_worker_death(tmp_path):
    """Three webhooks → three events processed, one case opened, its arrival→case lag
    observed, all on the web's /metrics; after the worker process is SIGKILLed and restarted,
    those counts stay and the next event adds to them."""
    with serving(tmp_path / "data", free_port()) as served:
        for body in duplicate_subscription_story():
            assert post_event(served.port, body, served.secret) == 200
        wait_for(lambda: _processed(_scrape(served.port)) == 3, 60, "three events processed")
        text = _scrape(served.port)
        assert value(text, "billing_ops_events_processed_total", event_type=SUB_CREATED) == 2
        assert value(text, "billing_ops_cases_opened_total", kind="duplicate_subscription") == 1
        assert value(text, "billing_ops_arrival_to_case_seconds_count") == 1
        assert value(text, "billing_ops_webhooks_accepted_total") == 3
        assert value(text, "billing_ops_queue_messages", queue="events", state="waiting") == 0

        [victim] = served.dramatiq_workers()
        os.kill(victim, signal.SIGKILL)
        wait_for(
            lambda: served.dramatiq_workers() not in ([], [victim]), 60, "worker tree restarted"
        )
        assert _processed(_scrape(served.port)) == 3  # the dead process's counts are kept
        at = 1_764_000_200
        fourth = envelope("evt_4", SUB_CREATED, subscription("sub_3", "cus_1", created=at), at)
        assert post_event(served.port, fourth, served.secret) == 200
        wait_for(lambda: _processed(_scrape(served.port)) == 4, 60, "the fourth event counted")


def test_a_worker_host_serves_its_own_metrics(tmp_path, redis_url):
    """`billing-ops worker --metrics-port` (a host without a web process): an event taken from
    the queue by its Dramatiq process is counted on that port."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(
        REDIS_URL=redis_url,
        DATABASE_URL=f"sqlite:///{tmp_path / 'billing-ops.db'}",
        STRIPE_WEBHOOK_SECRET=SECRET,
        BILLING_OPS_DATA_DIR=str(tmp_path / "data"),
        BILLING_OPS_LOG_FORMAT="json",
    )
    worker = subprocess.Popen(
        [BILLING_OPS, "worker", "--processes", "1", "--threads", "1", "--metrics-port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: http_status(f"http://127.0.0.1:{port}/metrics") == 200, 60, "served")
        build_broker(redis_url, edge=False).enqueue(event_message(event_body("evt_host")))
        wait_for(lambda: _processed(_scrape(port)) == 1, 60, "the event counted on the port")
    finally:
        stop_group(worker)
