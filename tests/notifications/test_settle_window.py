"""The settle window: a new case's notifications wait for the events still on their way.

Stripe does not deliver events in order (https://docs.stripe.com/webhooks#event-ordering). Two
equal charges on one card read as a duplicate until the invoices each paid arrive
(``team_purchase_same_card``); the case then resolves itself. Its Slack alert, due
``BILLING_OPS_ALERT_SETTLE_SECONDS`` after the case opened, is then withdrawn, never posted.
The clock is stepped, never waited for: the fixed ``NOW`` of the harness, or a ``SteppedClock``
the real worker reads.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import dramatiq
import pytest
from sqlalchemy import update

from rules import BillingSnapshot
from tests.metrics import local
from tests.notifications.builders import EMAIL, duplicate_charge_events, failed_renewal_events
from tests.notifications.harness import (
    NOW,
    SLACK_PATH,
    SteppedClock,
    deliver_all,
    outbox_rows,
    run,
    timeline,
)
from tests.serving import wait_for
from tests.support import FIXTURES
from worker import actors
from worker.broker import EVENTS_QUEUE, NOTIFICATIONS_QUEUE, event_message
from worker.cases import set_status
from worker.notifications.delivery import Channels
from worker.notifications.planning import REOPENED, CaseChange, NotifyPolicy, plan_notifications
from worker.store.db import write_session
from worker.store.tables import CaseRow

SETTLE = 60
FINAL = {"sent", "failed", "cancelled", "skipped", "withdrawn"}
SCENARIO = FIXTURES / "scenarios" / "team_purchase_same_card"
#: The customer and both charges, then the invoices each charge paid: until the invoices
#: arrive, two equal charges on one card are a duplicate charge.
CHARGES_FIRST = ("01", "02", "04", "05", "07")
INVOICES_LATE = ("03", "06")
#: The scenario's last event, plus a minute: the worker's stepped clock starts here.
SCENARIO_NOW = datetime.fromtimestamp(1_767_300_362 + 60, UTC)


def _bodies(prefixes: tuple[str, ...]) -> list[str]:
    return [next(SCENARIO.glob(f"{prefix}_*.json")).read_text() for prefix in prefixes]


def _posts(slack) -> list[str]:
    return [json.loads(request.get_data())["text"] for request, _ in slack.log]


def _rows(engine, reason: str) -> list:
    return [row for row in outbox_rows(engine) if row.reason == reason]


@pytest.fixture
def settling(configured):
    """Slack and SMTP configured, with a 60 s settle window."""
    return dataclasses.replace(configured, alert_settle_seconds=SETTLE)


@pytest.fixture
def settling_policy(settling) -> NotifyPolicy:
    return NotifyPolicy.from_settings(settling)


@pytest.fixture
def settling_channels(settling) -> Channels:
    return Channels.from_settings(settling)


def test_a_new_cases_alert_is_not_due_until_the_window_ends(
    engine, settling_policy, settling_channels, slack
):
    """A real duplicate charge: nothing goes at once, the alert is posted once the window
    ends, and only once."""
    [alert_id] = run(engine, duplicate_charge_events(), settling_policy)
    [early] = deliver_all(engine, [alert_id], settling_channels)
    assert (early.status, early.retry_at) == ("not_due", NOW + timedelta(seconds=SETTLE))
    assert slack.log == []
    later = NOW + timedelta(seconds=SETTLE)
    assert [r.status for r in deliver_all(engine, [alert_id] * 2, settling_channels, later)] == [
        "sent",
        "done",
    ]
    assert len(slack.log) == 1 and "duplicate" in _posts(slack)[0].lower()


def test_a_false_duplicate_cleared_within_the_window_is_withdrawn(
    engine, settling_policy, settling_channels, slack
):
    """The charges arrive before the invoices they paid: a duplicate-charge case opens and
    resolves itself ten seconds later. Its alert is withdrawn when due, never posted; the
    row, the timeline and the metric say so."""
    before = local("billing_ops_notifications_withdrawn_total", channel="slack")
    ids = run(engine, _bodies(CHARGES_FIRST), settling_policy)
    ids += run(engine, _bodies(INVOICES_LATE), settling_policy, NOW + timedelta(seconds=10))
    deliver_all(engine, ids, settling_channels, NOW + timedelta(seconds=SETTLE))
    [row] = _rows(engine, "duplicate_charge")
    assert row.status == "withdrawn"
    assert row.last_error == "the case resolved itself: later events cleared its finding"
    assert not any("duplicate charge" in text.lower() for text in _posts(slack))
    assert (
        "notification_withdrawn",
        "Slack alert withdrawn: the case resolved itself: later events cleared its finding",
    ) in timeline(engine)
    assert local("billing_ops_notifications_withdrawn_total", channel="slack") == before + 1


def test_a_case_an_operator_resolved_before_the_alert_was_due_is_not_alerted(
    engine, settling_policy, settling_channels, slack
):
    """An operator dealt with the case within the window: nothing is left to alert about."""
    [alert_id] = run(engine, duplicate_charge_events(), settling_policy)
    [case] = outbox_rows(engine)
    set_status(engine, case.case_id, "resolved", actor="sam", note="refunded ch_2", now=NOW)
    [result] = deliver_all(engine, [alert_id], settling_channels, NOW + timedelta(seconds=SETTLE))
    assert result.status == "withdrawn" and slack.log == []
    assert outbox_rows(engine)[0].last_error == "the case was resolved by sam"


def test_an_acknowledged_case_is_still_alerted(engine, settling_policy, settling_channels, slack):
    """Acknowledged is not resolved: the case is still open, so its alert goes."""
    [alert_id] = run(engine, duplicate_charge_events(), settling_policy)
    set_status(engine, outbox_rows(engine)[0].case_id, "acknowledged", actor="sam", note=None,
               now=NOW)  # fmt: skip
    [result] = deliver_all(engine, [alert_id], settling_channels, NOW + timedelta(seconds=SETTLE))
    assert result.status == "sent" and len(slack.log) == 1


def test_a_case_below_the_slack_threshold_when_due_is_withdrawn(
    engine, settling_policy, settling_channels, slack
):
    """A failed renewal opens at medium severity; by the time its alert is due the case reads
    low (staged in the store: a finding that shrank), below SLACK_MIN_SEVERITY."""
    run(engine, failed_renewal_events(), settling_policy)
    [alert] = _rows(engine, "case_alert")
    with write_session(engine) as session:
        session.execute(update(CaseRow).where(CaseRow.id == alert.case_id).values(severity="low"))
    [result] = deliver_all(engine, [alert.id], settling_channels, NOW + timedelta(seconds=SETTLE))
    assert result.status == "withdrawn" and slack.log == []
    assert _rows(engine, "case_alert")[0].last_error == "the case is now low severity, below medium"


def test_an_alert_of_a_case_that_reopened_meanwhile_gives_way_to_the_reopening(
    engine, settling_policy, settling_channels, slack
):
    """Opened, resolved by billing-ops, reopened, all within the window (the case change is
    staged; planning is the real one): one alert, the reopening's, not two."""
    [first] = run(engine, duplicate_charge_events(), settling_policy)
    later = NOW + timedelta(seconds=10)
    with write_session(engine) as session:
        case = session.get(CaseRow, outbox_rows(engine)[0].case_id)
        assert case is not None
        change = CaseChange(case, REOPENED, "evt_reopening")
        [second] = plan_notifications(session, [change], BillingSnapshot(), later, settling_policy)
    results = deliver_all(
        engine, [first, second], settling_channels, later + timedelta(seconds=SETTLE)
    )
    assert [r.status for r in results] == ["withdrawn", "sent"]
    assert outbox_rows(engine)[0].last_error == "the case reopened meanwhile and has its own alert"
    assert len(slack.log) == 1


def test_a_recovery_email_waits_and_is_not_sent_for_an_invoice_paid_meanwhile(
    engine, settling_policy, settling_channels, smtp, slack
):
    """The customer's email waits out the window too; the invoice paid within it cancels
    the email (as it always has), so the customer hears nothing."""
    from tests.notifications.builders import invoice_paid_event

    ids = run(engine, failed_renewal_events(), settling_policy)
    [email] = _rows(engine, "recovery_email")
    assert deliver_all(engine, [email.id], settling_channels)[0].status == "not_due"
    ids += run(engine, [invoice_paid_event()], settling_policy, NOW + timedelta(seconds=10))
    deliver_all(engine, ids, settling_channels, NOW + timedelta(seconds=SETTLE))
    assert smtp.inbox.messages == []
    assert _rows(engine, "recovery_email")[0].status == "cancelled"


def test_a_recovery_email_of_a_standing_case_goes_after_the_window(
    engine, settling_policy, settling_channels, smtp, slack
):
    """Nothing clears the failed renewal: one email once the window ends."""
    ids = run(engine, failed_renewal_events(), settling_policy)
    deliver_all(engine, ids, settling_channels, NOW + timedelta(seconds=SETTLE))
    assert [m["To"] for m in smtp.inbox.messages] == [EMAIL]


def test_operator_alerts_are_not_delayed(engine, settling_policy, settling_channels, smtp, slack):
    """A recovery email refused for good raises an operator alert: due at once, window or not."""
    smtp.inbox.refuse[EMAIL] = "550 5.1.1 mailbox unavailable"
    run(engine, failed_renewal_events(), settling_policy)
    [email] = _rows(engine, "recovery_email")
    due = NOW + timedelta(seconds=SETTLE)
    [failed] = deliver_all(engine, [email.id], settling_channels, due)
    [alert_id] = failed.alerts
    assert deliver_all(engine, [alert_id], settling_channels, due)[0].status == "sent"


def test_without_a_window_a_new_case_is_alerted_at_once(engine, policy, channels, slack):
    """BILLING_OPS_ALERT_SETTLE_SECONDS=0: the alert goes at the moment the case opened."""
    assert policy.settle_seconds == 0
    ids = run(engine, duplicate_charge_events(), policy)
    assert [r.status for r in deliver_all(engine, ids, channels)] == ["sent"]


# --- the worker path: real Redis, a real Dramatiq worker, a stepped clock ---------------


@pytest.fixture
def worker_with_clock(settings, slack):
    """A real worker whose actors read a clock the test steps; a 1 s window unless a test
    sets another (``worker_with_clock.start(settle)``)."""
    started: list = []

    def start(settle: int, clock: SteppedClock) -> actors.Runtime:
        configured = dataclasses.replace(
            settings,
            slack_webhook_url=slack.url_for(SLACK_PATH),
            slack_min_severity="critical",  # only duplicate charges (always posted) can post
            alert_settle_seconds=settle,
        )
        runtime = actors.setup(configured, clock=clock)
        worker = dramatiq.Worker(runtime.broker, worker_threads=2)
        worker.start()
        started.append((runtime, worker))
        return runtime

    yield start
    for runtime, worker in started:
        worker.stop()
        runtime.engine.dispose()


def _process(runtime: actors.Runtime, bodies: list[str]) -> None:
    for body in bodies:
        runtime.broker.enqueue(event_message(body))
    runtime.broker.join(EVENTS_QUEUE, timeout=30_000)


def _statuses(runtime: actors.Runtime) -> list[str]:
    return [row.status for row in _rows(runtime.engine, "duplicate_charge")]


def _case_status(runtime: actors.Runtime) -> list[str]:
    return [c.status for c in _cases(runtime) if c.kind == "duplicate_charge"]


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _cases(runtime: actors.Runtime) -> list:
    from worker.store.db import read_session

    with read_session(runtime.engine) as session:
        return list(session.query(CaseRow).order_by(CaseRow.id))


def test_worker_path_false_duplicate_is_never_posted(worker_with_clock, slack):
    """The team purchase's charges reach the worker before their invoices: the duplicate
    charge opens, then resolves itself; once the window has passed its alert is withdrawn,
    and Slack never hears of it."""
    clock = SteppedClock(SCENARIO_NOW)
    runtime = worker_with_clock(1, clock)
    _process(runtime, _bodies(CHARGES_FIRST))
    wait_for(lambda: _statuses(runtime), 30, "the duplicate-charge alert planned")
    _process(runtime, _bodies(INVOICES_LATE))
    wait_for(lambda: _case_status(runtime) == ["resolved"], 30, "the case resolved itself")
    clock.step(1)
    wait_for(lambda: set(_statuses(runtime)) <= FINAL, 30, "the alert settled")
    runtime.broker.join(NOTIFICATIONS_QUEUE, timeout=30_000)
    assert (_statuses(runtime), slack.log) == (["withdrawn"], [])


def test_worker_path_real_duplicate_is_posted_once_after_the_window(worker_with_clock, slack):
    """Nothing clears a real duplicate charge: no post while the window runs (the clock
    stands still), exactly one once it has passed, though every event came twice."""
    clock = SteppedClock(NOW + timedelta(minutes=5))
    runtime = worker_with_clock(1, clock)
    _process(runtime, duplicate_charge_events() * 2)
    wait_for(lambda: _statuses(runtime), 30, "the alert planned")
    [row] = _rows(runtime.engine, "duplicate_charge")
    [case] = _cases(runtime)
    assert _utc(row.next_attempt_at) == _utc(case.opened_at) + timedelta(seconds=1)
    assert (row.status, slack.log) == ("pending", [])
    clock.step(1)
    wait_for(lambda: _statuses(runtime) == ["sent"], 30, "the alert sent")
    runtime.broker.join(NOTIFICATIONS_QUEUE, timeout=30_000)
    assert len(slack.log) == 1


def test_worker_path_without_a_window_posts_at_once(worker_with_clock, slack):
    """Window 0: the alert is posted while the clock has not moved at all."""
    runtime = worker_with_clock(0, SteppedClock(NOW + timedelta(minutes=5)))
    _process(runtime, duplicate_charge_events())
    wait_for(lambda: _statuses(runtime) == ["sent"], 30, "the alert sent")
    runtime.broker.join(NOTIFICATIONS_QUEUE, timeout=30_000)
    assert len(slack.log) == 1
