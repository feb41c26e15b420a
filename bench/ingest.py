"""Webhook ingest benchmark: the real app under gunicorn beside a bare Flask endpoint.

Both apps run under gunicorn with exactly the command line ``billing-ops web`` runs
(``worker.cli.processes.web_argv``: ``webhooks/gunicorn_config.py``, ``--workers 2``, the access
log on stdout), on ``127.0.0.1:<free port>``; only the app differs:

* ``bare``: ``bench/bare_app.py``, answers ``{}`` to the POST (the floor);
* ``real``: ``webhooks:create_app()``: verifies the signature, parses, pushes onto the Redis intake.

1. closed loop, ``--concurrency`` requests in flight, bare and real alternating ``--rounds``
   times (the host is noisy; interleaving keeps drift out of the ratio): saturation rate,
   p50/p99, and the ratio real/bare of the pooled rates;
2. open loop on the real app at a fixed arrival rate of ``--load-fraction`` x its saturation
   rate, latency measured from each request's *scheduled* send time (no coordinated omission).

The load comes from ``--generators`` separate (forked) processes whose threads speak HTTP/1.1
over loopback sockets and sign each ~``--body-kb`` KB ``invoice.payment_failed`` event (a
distinct id every time) with HMAC-SHA256, as Stripe does. CPU per request of gunicorn, of the
generators and of redis-server is reported, so it shows where the cores went.

Bounded and local: only 127.0.0.1 is contacted, every loop stops after its duration, Redis
DB 14 (``--redis-url``) is flushed before, between phases and after (its test-run lock file is
held meanwhile, so no test run uses it, and a database a test run holds is refused), and
gunicorn and the generators are stopped on exit, Ctrl-C and SIGTERM included (gunicorn also
dies with us).

    /tmp/venv/bin/python bench/ingest.py                # ~75 s
    /tmp/venv/bin/python bench/ingest.py --duration 4 --rounds 1 --open-duration 8
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import hashlib
import hmac
import itertools
import json
import multiprocessing as mp
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from worker.cli.processes import WEB_APP, web_argv
from worker.intake import INTAKE_KEY

BENCH_DIR = Path(__file__).resolve().parent
HOST = "127.0.0.1"
PATH = "/webhooks/stripe"
SECRET = "whsec_bench_" + "k" * 32
REAL_APP = WEB_APP
BARE_APP = "bare_app:app"
EVENT_ID_PLACEHOLDER = "evt_XXXXXXXXXXXXXXXXXXXXXXXX"  # 28 chars, like a real Stripe id
TARGET_RATIO = 0.5
TARGET_P99_MS = 20.0


# --- the event ---------------------------------------------------------------------------


def _line_item(index: int) -> dict[str, Any]:
    """One invoice line, shaped like Stripe's."""
    return {
        "id": f"il_1Pbench{index:017d}",
        "object": "line_item",
        "amount": 4900,
        "amount_excluding_tax": 4900,
        "currency": "eur",
        "description": f"1 x Pro plan seat {index} (at EUR 49.00 / month)",
        "discount_amounts": [],
        "discountable": True,
        "discounts": [],
        "invoice": "in_1PbenchInvoice000000001",
        "livemode": False,
        "metadata": {},
        "period": {"end": 1735689600, "start": 1733011200},
        "plan": {"id": "price_1PbenchPro", "object": "plan", "interval": "month"},
        "proration": False,
        "quantity": 1,
        "subscription": "sub_1PbenchSubscription01",
        "type": "subscription",
    }


def event_template(body_bytes: int) -> tuple[bytes, bytes]:
    """An ``invoice.payment_failed`` event of about ``body_bytes`` bytes, as (prefix, suffix)
    around the event id, pretty-printed with 2-space indents as Stripe sends it."""
    invoice: dict[str, Any] = {
        "id": "in_1PbenchInvoice000000001",
        "object": "invoice",
        "account_country": "FR",
        "account_name": "Bench SAS",
        "amount_due": 4900,
        "amount_paid": 0,
        "amount_remaining": 4900,
        "attempt_count": 1,
        "attempted": True,
        "billing_reason": "subscription_cycle",
        "collection_method": "charge_automatically",
        "created": 1733011200,
        "currency": "eur",
        "customer": "cus_Pbench000000001",
        "customer_email": "jane.doe@example.com",
        "customer_name": "Jane Doe",
        "hosted_invoice_url": "https://invoice.stripe.com/i/acct_bench/test_bench",
        "last_finalization_error": None,
        "lines": {"object": "list", "data": [], "has_more": False, "url": "/v1/invoices/x/lines"},
        "livemode": False,
        "metadata": {},
        "next_payment_attempt": 1733270400,
        "number": "BENCH-0001",
        "paid": False,
        "payment_intent": "pi_3PbenchPaymentIntent01",
        "period_end": 1733011200,
        "period_start": 1730419200,
        "status": "open",
        "subscription": "sub_1PbenchSubscription01",
        "total": 4900,
    }
    event: dict[str, Any] = {
        "id": EVENT_ID_PLACEHOLDER,
        "object": "event",
        "api_version": "2024-06-20",
        "created": 1733011260,
        "data": {"object": invoice},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": "invoice.payment_failed",
    }

    def render() -> str:
        return json.dumps(event, indent=2)

    lines = invoice["lines"]["data"]
    while len(render()) < body_bytes:
        lines.append(_line_item(len(lines)))
        if len(render()) > body_bytes:
            lines.pop()
            break
    invoice["description"] = ""
    invoice["description"] = "x" * max(0, body_bytes - len(render()))
    prefix, suffix = render().encode().split(EVENT_ID_PLACEHOLDER.encode())
    return prefix, suffix


class RequestFactory:
    """Builds signed POSTs with distinct event ids: ``evt_<run><phase><proc><seq>``."""

    def __init__(self, body_bytes: int, port: int, run_tag: str, phase: int, proc: int) -> None:
        self.prefix, self.suffix = event_template(body_bytes)
        self.stem = f"evt_{run_tag}{phase:02d}{proc:03d}"
        self.width = len(EVENT_ID_PLACEHOLDER) - len(self.stem)
        self.host = f"{HOST}:{port}".encode()
        self.key = SECRET.encode()
        self.seq = itertools.count()
        self.body_len = len(self.prefix) + len(EVENT_ID_PLACEHOLDER) + len(self.suffix)

    def build(self) -> bytes:
        """The next request, signed now."""
        event_id = f"{self.stem}{next(self.seq):0{self.width}d}".encode()
        body = self.prefix + event_id + self.suffix
        stamp = str(int(time.time())).encode()
        sig = hmac.new(self.key, stamp + b"." + body, hashlib.sha256).hexdigest().encode()
        return b"".join(
            (
                b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: " + self.host + b"\r\n",
                b"User-Agent: Stripe/1.0 (+https://stripe.com/docs/webhooks)\r\n",
                b"Accept: */*; q=0.5, application/xml\r\nCache-Control: no-cache\r\n",
                b"Content-Type: application/json; charset=utf-8\r\n",
                b"Content-Length: " + str(len(body)).encode() + b"\r\n",
                b"Stripe-Signature: t=" + stamp + b",v1=" + sig + b"\r\n\r\n",
                body,
            )
        )


# --- the HTTP client ---------------------------------------------------------------------


class HttpConnection:
    """A minimal HTTP/1.1 client on one loopback socket: keep-alive when the server allows
    it (gthread), a new connection per request when it closes (gunicorn's sync worker)."""

    def __init__(self, port: int, timeout: float) -> None:
        self.port = port
        self.timeout = timeout
        self.sock: socket.socket | None = None

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def request(self, data: bytes) -> tuple[int, bytes]:
        """Send one request; return (status, body). Raises ``OSError`` on failure."""
        reused = self.sock is not None
        if self.sock is None:
            self.sock = socket.create_connection((HOST, self.port), timeout=self.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.sock.sendall(data)
            return self._response(self.sock)
        except ConnectionError:
            self.close()
            if not reused:
                raise
        return self.request(data)  # the kept-alive socket had gone stale: once, fresh

    def _response(self, sock: socket.socket) -> tuple[int, bytes]:
        buf = b""
        while (end := buf.find(b"\r\n\r\n")) < 0:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionResetError("closed before the response head")
            buf += chunk
        head, body = buf[:end].lower(), buf[end + 4 :]
        status = int(head[9:12])
        length = -1
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name == b"content-length":
                length = int(value)
        while length < 0 or len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                if length < 0:
                    break
                raise ConnectionResetError("closed inside the response body")
            body += chunk
        if length < 0 or b"\r\nconnection: close" in head or head.startswith(b"http/1.0"):
            self.close()
        return status, body


# --- the load generator (runs in its own processes) --------------------------------------


@dataclass(frozen=True)
class LoadSpec:
    """What one phase asks of every generator process."""

    port: int
    body_bytes: int
    run_tag: str
    phase: int
    threads: int  # per process
    processes: int
    warmup_start: float  # time.monotonic() (CLOCK_MONOTONIC is system-wide on Linux)
    measure_start: float
    end: float
    expect_real: bool
    rate: float = 0.0  # total arrivals/s; 0 means closed loop
    timeout: float = 10.0


@dataclass
class ThreadTally:
    """What one generator thread saw inside the measured window."""

    latencies: array = field(default_factory=lambda: array("d"))
    lags: array = field(default_factory=lambda: array("d"))
    ok: int = 0
    duplicates: int = 0
    errors: Counter = field(default_factory=Counter)


def _check(spec: LoadSpec, status: int, body: bytes, tally: ThreadTally) -> None:
    if status != 200:
        tally.errors[f"http_{status}"] += 1
    elif spec.expect_real and b'"received":true' not in body:
        tally.errors["unexpected_body"] += 1
    else:
        tally.ok += 1
        if spec.expect_real and b'"duplicate":true' in body:
            tally.duplicates += 1


def _closed_loop(spec: LoadSpec, factory: RequestFactory, tally: ThreadTally) -> None:
    conn = HttpConnection(spec.port, spec.timeout)
    while (now := time.monotonic()) < spec.end:
        if now < spec.warmup_start:
            time.sleep(spec.warmup_start - now)
            continue
        data = factory.build()
        sent = time.monotonic()
        try:
            status, body = conn.request(data)
        except OSError as error:
            conn.close()
            if sent >= spec.measure_start:
                tally.errors[type(error).__name__] += 1
            time.sleep(0.01)
            continue
        done = time.monotonic()
        if sent >= spec.measure_start and done <= spec.end:
            tally.latencies.append(done - sent)
            _check(spec, status, body, tally)
    conn.close()


def _open_loop(
    spec: LoadSpec, factory: RequestFactory, slots: itertools.count, proc: int, tally: ThreadTally
) -> None:
    conn = HttpConnection(spec.port, spec.timeout)
    while True:
        # Arrival k of this process is arrival k * processes + proc of the whole run.
        scheduled = spec.warmup_start + (next(slots) * spec.processes + proc) / spec.rate
        if scheduled >= spec.end:
            break
        data = factory.build()
        if (delay := scheduled - time.monotonic()) > 0:
            time.sleep(delay)
        sent = time.monotonic()
        try:
            status, body = conn.request(data)
        except OSError as error:
            conn.close()
            if scheduled >= spec.measure_start:
                tally.errors[type(error).__name__] += 1
            continue
        done = time.monotonic()
        if scheduled >= spec.measure_start:
            tally.latencies.append(done - scheduled)
            tally.lags.append(sent - scheduled)
            _check(spec, status, body, tally)
    conn.close()


def generator_main(spec: LoadSpec, proc: int, results: Any) -> None:
    """Entry point of one generator process: run the threads, report one dict."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us; we stop by ourselves
    factory = RequestFactory(spec.body_bytes, spec.port, spec.run_tag, spec.phase, proc)
    tallies = [ThreadTally() for _ in range(spec.threads)]
    slots = itertools.count()
    threads = [
        threading.Thread(
            target=_open_loop if spec.rate else _closed_loop,
            args=(spec, factory, slots, proc, tally) if spec.rate else (spec, factory, tally),
            daemon=True,
        )
        for tally in tallies
    ]
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, spec.measure_start - time.monotonic()))
    cpu_start = time.process_time()
    for thread in threads:
        thread.join(timeout=max(0.0, spec.end - time.monotonic()) + spec.timeout + 1)
    cpu = time.process_time() - cpu_start
    merged = ThreadTally()
    for tally in tallies:
        merged.latencies.extend(tally.latencies)
        merged.lags.extend(tally.lags)
        merged.ok += tally.ok
        merged.duplicates += tally.duplicates
        merged.errors.update(tally.errors)
    results.put(
        {
            "latencies": merged.latencies.tobytes(),
            "lags": merged.lags.tobytes(),
            "ok": merged.ok,
            "duplicates": merged.duplicates,
            "errors": dict(merged.errors),
            "cpu": cpu,
        }
    )


# --- the servers ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """In the gunicorn child before exec: SIGTERM it if the benchmark dies (Linux)."""
    os.setsid()
    with contextlib.suppress(OSError):  # not glibc: the finally clause still stops it
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Server:
    """One gunicorn in its own session, stopped (group-wide) by ``stop``."""

    def __init__(self, name: str, app: str, args: argparse.Namespace, workdir: Path) -> None:
        self.name = name
        self.port = _free_port()
        self.log_path = workdir / f"gunicorn-{name}.log"
        self.command = web_argv(f"{HOST}:{self.port}", args.workers, app=app)
        env = dict(os.environ)
        env.update(
            PYTHONPATH=os.pathsep.join(filter(None, [str(BENCH_DIR), env.get("PYTHONPATH")])),
            STRIPE_WEBHOOK_SECRET=SECRET,
            REDIS_URL=args.redis_url,
            DATABASE_URL=f"sqlite:///{workdir / 'bench.db'}",
            BILLING_OPS_DATA_DIR=str(workdir / "data"),
            BILLING_OPS_LOG_FORMAT="json",
        )
        if args.multiproc_metrics:  # as ``billing-ops web`` / ``serve`` run it
            metrics_dir = workdir / f"metrics-{name}"
            metrics_dir.mkdir()
            env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            self.command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # the parent has no threads at this point
        )

    def wait_ready(self, args: argparse.Namespace, deadline_s: float = 30.0) -> None:
        """Until one signed webhook gets a 200 (then every worker has had time to boot)."""
        factory = RequestFactory(args.body_kb * 1024, self.port, "ready0", 9, 999)
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            conn = HttpConnection(self.port, 2.0)
            try:
                status, _ = conn.request(factory.build())
                if status == 200:
                    return
            except OSError:
                pass
            finally:
                conn.close()
            time.sleep(0.1)
        tail = self.log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"gunicorn ({self.name}) never answered 200; log tail:\n{tail}")

    def cpu_seconds(self) -> float:
        """utime + stime of the master and its workers (from /proc)."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2 :].split()
            pid, ppid = int(entry.name), int(fields[1])
            if pid == self.proc.pid or ppid == self.proc.pid:
                total += int(fields[11]) + int(fields[12])
        return total / ticks

    def stop(self) -> None:
        """SIGTERM the group, SIGKILL it after 5 s."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
            except ProcessLookupError:
                pass
        if not self.log.closed:
            self.log.close()


# --- running a phase -----------------------------------------------------------------------


@dataclass
class PhaseResult:
    """The figures of one phase (or of several pooled)."""

    name: str
    server: str
    duration: float
    ok: int
    duplicates: int
    errors: dict[str, int]
    latencies_ms: list[float]
    lags_ms: list[float]
    generator_cpu: float
    server_cpu: float
    redis_cpu: float
    offered_rate: float = 0.0

    @property
    def rate(self) -> float:
        return self.ok / self.duration if self.duration else 0.0

    def pct(self, q: float, values: list[float] | None = None) -> float:
        """Nearest-rank percentile, in ms."""
        data = self.latencies_ms if values is None else values
        if not data:
            return float("nan")
        return data[min(len(data) - 1, max(0, int(q / 100 * len(data) + 0.5) - 1))]

    def us_per_request(self, cpu: float) -> float:
        return cpu / self.ok * 1e6 if self.ok else float("nan")


def pooled(name: str, parts: list[PhaseResult]) -> PhaseResult:
    """Several phases of one server as if they were one."""
    errors: Counter = Counter()
    for part in parts:
        errors.update(part.errors)
    return PhaseResult(
        name=name,
        server=parts[0].server,
        duration=sum(p.duration for p in parts),
        ok=sum(p.ok for p in parts),
        duplicates=sum(p.duplicates for p in parts),
        errors=dict(errors),
        latencies_ms=sorted(x for p in parts for x in p.latencies_ms),
        lags_ms=sorted(x for p in parts for x in p.lags_ms),
        generator_cpu=sum(p.generator_cpu for p in parts),
        server_cpu=sum(p.server_cpu for p in parts),
        redis_cpu=sum(p.redis_cpu for p in parts),
        offered_rate=parts[0].offered_rate,
    )


LIVE: list[Any] = []  # generator processes and servers to stop on the way out


def _redis_cpu(url: str) -> float:
    """CPU seconds the Redis server has used (it shares the cores with everything else)."""
    info = redis.Redis.from_url(url).info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def run_phase(
    name: str,
    server: Server,
    args: argparse.Namespace,
    run_tag: str,
    phase: int,
    rate: float = 0.0,
    duration: float | None = None,
) -> PhaseResult:
    """Run the generators against ``server`` for ``--warmup`` + ``duration`` seconds."""
    duration = duration or args.duration
    ctx = mp.get_context("fork")
    results = ctx.Queue()
    start = time.monotonic() + 0.3  # let the forks settle
    per_process = -(-args.concurrency // args.generators)
    spec = LoadSpec(
        port=server.port,
        body_bytes=args.body_kb * 1024,
        run_tag=run_tag,
        phase=phase,
        threads=args.open_loop_threads if rate else per_process,
        processes=args.generators,
        warmup_start=start,
        measure_start=start + args.warmup,
        end=start + args.warmup + duration,
        expect_real=server.name == "real",
        rate=rate,
    )
    procs = [
        ctx.Process(target=generator_main, args=(spec, i, results), daemon=True)
        for i in range(args.generators)
    ]
    LIVE.extend(procs)
    for proc in procs:
        proc.start()
    time.sleep(max(0.0, spec.measure_start - time.monotonic()))
    cpu_start, redis_start = server.cpu_seconds(), _redis_cpu(args.redis_url)
    time.sleep(max(0.0, spec.end - time.monotonic()))
    server_cpu = server.cpu_seconds() - cpu_start
    redis_cpu = _redis_cpu(args.redis_url) - redis_start
    reports = [results.get(timeout=spec.timeout + 15) for _ in procs]
    for proc in procs:
        proc.join(timeout=5)
        LIVE.remove(proc)
    latencies, lags = array("d"), array("d")
    errors: Counter = Counter()
    for report in reports:
        latencies.frombytes(report["latencies"])
        lags.frombytes(report["lags"])
        errors.update(report["errors"])
    return PhaseResult(
        name=name,
        server=server.name,
        duration=duration,
        ok=sum(r["ok"] for r in reports),
        duplicates=sum(r["duplicates"] for r in reports),
        errors=dict(errors),
        latencies_ms=sorted(x * 1e3 for x in latencies),
        lags_ms=sorted(x * 1e3 for x in lags),
        generator_cpu=sum(r["cpu"] for r in reports),
        server_cpu=server_cpu,
        redis_cpu=redis_cpu,
        offered_rate=rate,
    )


@dataclass
class Run:
    """Everything measured in one invocation."""

    rounds: list[PhaseResult]
    bare: PhaseResult
    real: PhaseResult
    open_loop: PhaseResult
    queued: list[tuple[int, int]]  # (entries on the intake, measured 200s) per real round


def run_all(args: argparse.Namespace, workdir: Path, run_tag: str) -> Run:
    """Both servers up; closed loops alternate bare/real ``--rounds`` times; then open loop."""
    servers = {}
    for name, app in (("bare", BARE_APP), ("real", REAL_APP)):
        servers[name] = server = Server(name, app, args, workdir)
        LIVE.append(server)
    for server in servers.values():
        server.wait_ready(args)
    rounds: list[PhaseResult] = []
    queued: list[tuple[int, int]] = []
    label = f"closed c={args.concurrency}"
    for index in range(args.rounds):
        for name in ("bare", "real"):
            result = run_phase(f"{label} #{index + 1}", servers[name], args, run_tag, len(rounds))
            rounds.append(result)
            if name == "real":
                queued.append((_queued(args.redis_url), result.ok))
                _flush(args.redis_url)
    bare = pooled(label, [r for r in rounds if r.server == "bare"])
    real = pooled(label, [r for r in rounds if r.server == "real"])
    servers["bare"].stop()  # nothing else but the real app in the last phase
    rate = args.rate or args.load_fraction * real.rate
    open_loop = run_phase(
        f"open {rate:.0f}/s", servers["real"], args, run_tag, 99, rate, args.open_duration
    )
    return Run(rounds=rounds, bare=bare, real=real, open_loop=open_loop, queued=queued)


def _claim_like_a_test_run(url: str) -> object:
    """Hold the lock file a test run holds for this Redis database (``tests/conftest.py``:
    databases 1-15 of 127.0.0.1:6379, one lock file each), for as long as this process
    lives: the benchmark flushes its database, and a test run on the same database would
    lose its queue. False when a test run holds it; None when the URL is not such a database.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "redis" or parts.hostname not in ("127.0.0.1", "localhost"):
        return None
    db = parts.path.strip("/") or "0"
    if (parts.port or 6379) != 6379 or not db.isdigit() or not 1 <= int(db) <= 15:
        return None
    handle = open(Path(tempfile.gettempdir()) / f"billing-ops-tests-redis-{db}.lock", "w")  # noqa: SIM115
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return False
    return handle  # released when the process exits


def _flush(url: str) -> None:
    redis.Redis.from_url(url).flushdb()


def _queued(url: str) -> int:
    """Entries on the intake list no worker drains here (proof the 200s were real pushes)."""
    return int(redis.Redis.from_url(url).llen(INTAKE_KEY))


# --- reporting -----------------------------------------------------------------------------


def print_table(run: Run, args: argparse.Namespace) -> None:
    """The human-readable table."""
    header = (
        f"{'phase':<18}{'app':<6}{'ok/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}"
        f"{'ok':>8}{'err':>5}{'dup':>5}{'srv CPU':>10}{'gen CPU':>10}{'redis':>8}{'lag99':>7}"
    )
    print(
        f"\n{' '.join(web_argv(f'{HOST}:0', args.workers, app='<app>')[1:])}   (both apps)\n"
        f"body {args.body_kb * 1024} B invoice.payment_failed, {args.generators} generator "
        f"processes, {args.rounds} x {args.duration:g} s closed loop per app, "
        f"{args.open_duration:g} s open loop (+{args.warmup:g} s warm-up each), "
        f"{os.cpu_count()} cores shared by everything"
    )
    print(header)
    print("-" * len(header))
    rows = [*run.rounds, run.bare, run.real, run.open_loop]
    for i, r in enumerate(rows):
        if i in (len(run.rounds), len(rows) - 1):
            print("-" * len(header))
        lag = f"{r.pct(99, r.lags_ms):.2f}" if r.lags_ms else "-"
        name = r.name + (" all" if r in (run.bare, run.real) else "")
        print(
            f"{name:<18}{r.server:<6}{r.rate:>8.0f}{r.pct(50):>8.2f}{r.pct(99):>8.2f}"
            f"{r.pct(100):>8.2f}{r.ok:>8}{sum(r.errors.values()):>5}{r.duplicates:>5}"
            f"{r.us_per_request(r.server_cpu):>8.0f}us{r.us_per_request(r.generator_cpu):>8.0f}us"
            f"{r.us_per_request(r.redis_cpu):>6.0f}us{lag:>7}"
        )
    print(
        "srv/gen/redis CPU: CPU time per OK request used by gunicorn (master + workers), by the "
        "load generators, by redis-server.\nlag99: open loop, p99 of (actual - scheduled) send "
        "time, i.e. the generator's own lateness, already included in the latency."
    )
    for r in rows:
        if r.errors:
            print(f"  {r.name} {r.server} errors: {r.errors}")


def summary(run: Run, args: argparse.Namespace) -> dict[str, Any]:
    """The figures as one JSON-able dict."""
    bare, real, ol = run.bare, run.real, run.open_loop
    ratio = real.rate / bare.rate if bare.rate else 0.0
    rounds = run.rounds
    per_round = [
        round(rounds[i + 1].rate / rounds[i].rate, 3) if rounds[i].rate else 0.0
        for i in range(0, len(rounds), 2)
    ]
    return {
        "workers": args.workers,
        "web_argv": web_argv(f"{HOST}:0", args.workers, app="<app>")[1:],
        "body_bytes": args.body_kb * 1024,
        "concurrency": args.concurrency,
        "generators": args.generators,
        "rounds": args.rounds,
        "duration_s": args.duration,
        "bare_rps": round(bare.rate, 1),
        "bare_p50_ms": round(bare.pct(50), 3),
        "bare_p99_ms": round(bare.pct(99), 3),
        "real_rps": round(real.rate, 1),
        "real_p50_ms": round(real.pct(50), 3),
        "real_p99_ms": round(real.pct(99), 3),
        "ratio": round(ratio, 3),
        "ratio_per_round": per_round,
        "open_rate_rps": round(ol.offered_rate, 1),
        "open_achieved_rps": round(ol.rate, 1),
        "open_p50_ms": round(ol.pct(50), 3),
        "open_p99_ms": round(ol.pct(99), 3),
        "open_max_ms": round(ol.pct(100), 3),
        "open_send_lag_p99_ms": round(ol.pct(99, ol.lags_ms), 3),
        "bare_server_cpu_us": round(bare.us_per_request(bare.server_cpu)),
        "real_server_cpu_us": round(real.us_per_request(real.server_cpu)),
        "real_redis_cpu_us": round(real.us_per_request(real.redis_cpu)),
        "generator_cpu_us": round(real.us_per_request(real.generator_cpu)),
        "errors": sum(sum(r.errors.values()) for r in [*run.rounds, ol]),
        "duplicates": sum(r.duplicates for r in [*run.rounds, ol]),
        "ratio_target_met": ratio >= TARGET_RATIO,
        "p99_target_met": ol.pct(99) < TARGET_P99_MS,
    }


def main(argv: list[str] | None = None) -> int:
    """Parse the flags, run, report; exit 0 only if both targets are met."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    flag = parser.add_argument
    flag("--workers", type=int, default=2, help="gunicorn --workers (both apps)")
    flag("--duration", type=float, default=10.0, help="seconds measured per closed-loop phase")
    flag("--rounds", type=int, default=2, help="bare/real closed-loop pairs, interleaved")
    flag("--open-duration", type=float, default=20.0, help="seconds measured, open loop")
    flag("--warmup", type=float, default=1.5, help="seconds of unmeasured load per phase")
    flag("--concurrency", type=int, default=8, help="closed loop: requests in flight, in all")
    flag("--generators", type=int, default=2, help="load-generator processes")
    flag("--open-loop-threads", type=int, default=8, help="open loop: threads per generator")
    flag("--body-kb", type=int, default=4, help="event body size, KB")
    flag("--load-fraction", type=float, default=0.5, help="open-loop rate / saturation rate")
    flag("--rate", type=float, default=0.0, help="open-loop rate in req/s (overrides fraction)")
    flag("--redis-url", default="redis://127.0.0.1:6379/14", help="Redis for the real app")
    flag(
        "--no-multiproc-metrics",
        dest="multiproc_metrics",
        action="store_false",
        help="don't set PROMETHEUS_MULTIPROC_DIR for the real app (`billing-ops web` sets it)",
    )
    args = parser.parse_args(argv)
    positive = ("workers", "duration", "rounds", "open_duration", "concurrency")
    if any(getattr(args, name) <= 0 for name in (*positive, "generators", "body_kb")):
        parser.error("sizes, counts and durations must be positive")
    if not args.redis_url.startswith(("redis://127.0.0.1", "redis://localhost", "unix://")):
        parser.error("--redis-url must be on this machine")
    held = _claim_like_a_test_run(args.redis_url)
    if held is False:
        parser.error(f"{args.redis_url} is in use by a test run; pass another --redis-url")

    def on_sigterm(_signum: int, _frame: Any) -> None:
        raise SystemExit(143)

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    run_tag = uuid.uuid4().hex[:5]
    workdir = Path(tempfile.mkdtemp(prefix="billing-ops-bench-"))
    try:
        redis.Redis.from_url(args.redis_url).ping()
        _flush(args.redis_url)
        run = run_all(args, workdir, run_tag)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        for item in reversed(LIVE):
            if isinstance(item, Server):
                item.stop()
            elif item.is_alive():
                item.terminate()
                item.join(timeout=5)
        with contextlib.suppress(redis.RedisError):
            _flush(args.redis_url)
        shutil.rmtree(workdir, ignore_errors=True)

    print_table(run, args)
    for index, (queued, ok) in enumerate(run.queued, 1):
        print(f"real round {index}: {queued} entries on the intake for {ok} measured 200s")
    figures = summary(run, args)
    print(
        f"ratio real/bare = {figures['ratio']:.2f} (rounds: {figures['ratio_per_round']}); "
        f"target >= {TARGET_RATIO}: {'MET' if figures['ratio_target_met'] else 'NOT MET'}"
    )
    print(
        f"open loop at {figures['open_rate_rps']:.0f} req/s ({args.load_fraction:g} x "
        f"saturation): p50 {figures['open_p50_ms']:.2f} ms, p99 {figures['open_p99_ms']:.2f} ms; "
        f"target p99 < {TARGET_P99_MS:g} ms: {'MET' if figures['p99_target_met'] else 'NOT MET'}"
    )
    print(json.dumps(figures))
    return 0 if figures["ratio_target_met"] and figures["p99_target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
