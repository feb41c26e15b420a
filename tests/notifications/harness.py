"""What the notification tests share: receivers, a fixed clock, and pipeline shortcuts."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from sqlalchemy import Engine, select

from tests.support import SECRET, free_port
from worker.notifications.delivery import Channels, DeliveryResult, RetryPolicy, deliver
from worker.notifications.planning import NotifyPolicy
from worker.pipeline import process_event
from worker.settings import Settings
from worker.store.db import read_session
from worker.store.tables import CaseEntryRow, OutboxRow

#: A fixed clock for pipeline and delivery: the tests step it explicitly.
NOW = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)
#: Fast retries so that a test can step past the backoff.
FAST_RETRY = RetryPolicy(max_attempts=4, min_backoff_seconds=1, max_backoff_seconds=4)
SLACK_PATH = "/services/T000/B000/XXXX"


class Inbox:
    """An aiosmtpd handler that keeps what it receives and refuses listed recipients."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse: dict[str, str] = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(message)  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


class SmtpServer:
    """An SMTP server on a fixed port that a test can stop and start again."""

    def __init__(self) -> None:
        self.inbox = Inbox()
        self.port = free_port()
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


def clock_at(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


class SteppedClock:
    """A clock that stands still until the test steps it, for a real worker's actors
    (``worker.actors.setup(clock=...)``): a settle window passes without waiting for it."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def step(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)


def run(
    engine: Engine, bodies: Iterable[str], policy: NotifyPolicy | None, now: datetime = NOW
) -> list[int]:
    """Process events as a worker would at ``now``; return the pending outbox ids to deliver."""
    ids: list[int] = []
    for body in bodies:
        ids += process_event(engine, body, notify=policy, clock=clock_at(now)).outbox_ids
    return ids


def deliver_all(
    engine: Engine, ids: Iterable[int], channels: Channels, now: datetime = NOW
) -> list[DeliveryResult]:
    return [deliver(engine, i, channels=channels, now=now, retry=FAST_RETRY) for i in ids]


def outbox_rows(engine: Engine) -> list[OutboxRow]:
    with read_session(engine) as session:
        return list(session.scalars(select(OutboxRow).order_by(OutboxRow.id)))


def timeline(engine: Engine, action_prefix: str = "notification_") -> list[tuple[str, str]]:
    """(action, note) of every notification entry, in order."""
    with read_session(engine) as session:
        rows = session.scalars(
            select(CaseEntryRow)
            .where(CaseEntryRow.action.startswith(action_prefix))
            .order_by(CaseEntryRow.id)
        )
        return [(row.action, row.note or "") for row in rows]


def make_settings(tmp_path: Path, database_url: str = "sqlite://", **overrides: object) -> Settings:
    base = Settings(
        data_dir=tmp_path,
        webhook_secrets=(SECRET,),
        database_url=database_url,
        log_format="json",
        alert_settle_seconds=0,  # at once, unless a test is about the settle window
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]
