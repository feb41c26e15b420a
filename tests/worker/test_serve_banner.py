"""`serve`'s banner: a human text on stdout, logs on stderr, the signing secret shown only when
billing-ops generated it (an operator's own secret is said to be set, never printed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.serving import BILLING_OPS, Served, kill_everything, wait_for
from tests.support import free_port

BANNER_END = "Ctrl-C stops everything."


@dataclass
class Streams:
    stdout: Path
    stderr: Path

    def out(self) -> str:
        return self.stdout.read_text(errors="replace")

    def err(self) -> str:
        return self.stderr.read_text(errors="replace")


@contextmanager
def serve_until_banner(tmp_path: Path, **env: str) -> Iterator[tuple[Served, Streams]]:
    """`billing-ops serve` with stdout and stderr in two files, until its banner is out; then
    Ctrl-C, and every process it started is gone afterwards."""
    data_dir, port = tmp_path / "data", free_port()
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("REDIS_URL", "DATABASE_URL", "STRIPE_WEBHOOK_SECRET", "OPERATOR_TOKEN")
    }
    full_env = {**base, "BILLING_OPS_DATA_DIR": str(data_dir), "BILLING_OPS_LOG_FORMAT": "json"}
    streams = Streams(tmp_path / "stdout.txt", tmp_path / "stderr.txt")
    with streams.stdout.open("wb") as out, streams.stderr.open("wb") as err:
        process = subprocess.Popen(
            [BILLING_OPS, "serve", "--port", str(port), "--web-workers", "1"],
            env={**full_env, **env},
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    served = Served(process=process, port=port, data_dir=data_dir, log_path=streams.stderr)
    try:
        wait_for(lambda: BANNER_END in streams.out() or process.poll() is not None, 90, "banner")
        assert BANNER_END in streams.out(), streams.err()[-3000:]
        yield served, streams
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        kill_everything(served)


def test_a_generated_secret_is_shown_on_stdout_with_where_it_is_kept(tmp_path):
    """No STRIPE_WEBHOOK_SECRET: the banner (stdout) shows the secret serve generated, so the
    operator can give it to `stripe listen`, and says where it is kept."""
    with serve_until_banner(tmp_path) as (served, streams):
        secret = served.secret
        banner = streams.out()
    assert f"signing secret  {secret}  (generated, kept in {served.data_dir}" in banner
    assert secret not in streams.err()


def test_a_secret_from_the_environment_is_never_printed(tmp_path):
    """STRIPE_WEBHOOK_SECRET set: the banner says it is set and from where; the value appears on
    neither stream."""
    own = "whsec_the_operators_own_secret_value"
    with serve_until_banner(tmp_path, STRIPE_WEBHOOK_SECRET=own) as (_served, streams):
        pass
    assert "signing secret  set (from STRIPE_WEBHOOK_SECRET)" in streams.out()
    assert own not in streams.out() and own not in streams.err()


def test_logs_go_to_stderr_and_the_banner_alone_to_stdout(tmp_path):
    """stdout holds the banner and nothing else; every stderr line is a JSON log line,
    the stop included."""
    with serve_until_banner(tmp_path) as (_served, streams):
        pass
    assert streams.out().strip().startswith("billing-ops is running")
    assert streams.out().strip().endswith(BANNER_END)
    events = [json.loads(line)["event"] for line in streams.err().splitlines()]
    assert "stop_requested" in events and events[-1] == "serve_stopped"
