"""The full path on real services: Redis broker, an in-process Dramatiq worker, the store."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

import dramatiq

from tests.notifications.builders import EMAIL, failed_renewal_events
from tests.notifications.harness import SLACK_PATH, outbox_rows
from tests.serving import join_events
from worker import actors
from worker.broker import EVENTS_QUEUE, NOTIFICATIONS_QUEUE, event_message
from worker.intake import encode_envelope, push


@contextmanager
def _worker_with_channels(settings, smtp, slack) -> Iterator[actors.Runtime]:  # noqa: ANN001
    """A real in-process worker with Slack and email configured; stopped on the way out."""
    settings = dataclasses.replace(
        settings,
        slack_webhook_url=slack.url_for(SLACK_PATH),
        smtp_url=smtp.url,
        email_from="Acme Billing <billing@acme.test>",
    )
    runtime = actors.setup(settings)
    worker = dramatiq.Worker(runtime.broker, worker_threads=2)
    worker.start()
    try:
        yield runtime
        runtime.broker.join(NOTIFICATIONS_QUEUE, timeout=20_000)
        worker.join()
    finally:
        worker.stop()
        runtime.engine.dispose()


def _one_email_and_one_post(runtime: actors.Runtime, smtp, slack) -> None:  # noqa: ANN001
    assert [m["To"] for m in smtp.inbox.messages] == [EMAIL]
    assert len(slack.log) == 1
    assert sorted(r.status for r in outbox_rows(runtime.engine)) == ["sent", "sent"]


def test_events_on_the_queue_end_as_one_email_and_one_slack_post(settings, smtp, slack):
    """Webhook messages processed by a real worker lead to one email and one Slack post each,
    even when every event is enqueued twice."""
    with _worker_with_channels(settings, smtp, slack) as runtime:
        for body in failed_renewal_events() * 2:
            runtime.broker.enqueue(event_message(body))
        runtime.broker.join(EVENTS_QUEUE, timeout=20_000)
    _one_email_and_one_post(runtime, smtp, slack)


def test_events_through_the_intake_end_as_one_email_and_one_slack_post(settings, smtp, slack):
    """The same story accepted twice by the edge: the pump batches it, a real worker processes
    the batches, and still one email and one Slack post go out."""
    with _worker_with_channels(settings, smtp, slack) as runtime:
        for number, body in enumerate(failed_renewal_events() * 2):
            entry = encode_envelope(body.encode(), 1_764_000_000_000 + number, None)
            push(runtime.broker.client, entry, f"billing-ops:seen:{number}", 60)
        join_events(runtime.broker)
    _one_email_and_one_post(runtime, smtp, slack)
