"""`billing-ops serve` as a new user runs it: embedded Redis and SQLite, Ctrl-C stops all."""

from __future__ import annotations

import json
import os
import signal
import urllib.request

from tests.serving import processes_using, serving, wait_for
from tests.support import event_body, free_port, sign


def test_serve_processes_a_signed_event_and_stops_everything_on_ctrl_c(tmp_path):
    """A signed event posted to the printed URL is processed; Ctrl-C leaves no process behind."""
    with serving(tmp_path / "data", free_port()) as served:
        body = event_body("evt_serve_1")
        request = urllib.request.Request(
            f"http://127.0.0.1:{served.port}/webhooks/stripe",
            data=body.encode(),
            headers={
                "Stripe-Signature": sign(body, served.secret),
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.loads(response.read()) == {"received": True, "duplicate": False}
        wait_for(lambda: served.event_status("evt_serve_1") == "processed", 30, "processed")

        os.killpg(served.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        assert served.process.wait(timeout=60) == 0
        output = served.output()
        assert f"http://127.0.0.1:{served.port}/webhooks/stripe" in output
        assert served.secret in output
        assert processes_using(served.data_dir) == []
