"""Notifications: ``digest`` and the ``outbox``."""

from __future__ import annotations

import json

import click

from worker.cli.app import cli_settings, main, open_engine, require_redis, utc_now
from worker.cli.output import clean, say
from worker.errors import BillingOpsError
from worker.notifications.outbox import STATUSES as OUTBOX_STATUSES


@main.command()
@click.option("--since", default="24h", show_default=True, help="Window for new cases: 24h, 7d…")
@click.option(
    "--to",
    "target",
    type=click.Choice(["stdout", "slack", "email"]),
    default="stdout",
    show_default=True,
)
def digest(since: str, target: str) -> None:
    """Open cases by kind with the money at stake, to stdout, Slack or DIGEST_EMAIL_TO."""
    from worker.errors import DeliveryError
    from worker.notifications import digest as digests
    from worker.notifications.delivery import Channels
    from worker.notifications.slack import plain_message

    settings = cli_settings(existing_install=True)
    try:
        window = digests.parse_duration(since)
    except BillingOpsError as error:
        raise click.BadParameter(str(error), param_hint="--since") from None
    now = utc_now()
    summary = digests.build_digest(open_engine(settings), since=now - window, now=now)
    text = digests.render_text(summary)
    if target == "stdout":
        say(text)
        return
    channels = Channels.from_settings(settings)
    try:
        if target == "slack":
            if channels.slack is None:
                raise click.ClickException("Slack is not configured (SLACK_WEBHOOK_URL or token)")
            channels.slack.post(plain_message(text))
        else:
            if channels.email is None or not settings.email_from or not settings.digest_email_to:
                raise click.ClickException("email needs SMTP_URL, EMAIL_FROM and DIGEST_EMAIL_TO")
            channels.email.send(
                digests.digest_email(
                    text,
                    sender=settings.email_from,
                    to=settings.digest_email_to,
                    open_cases=summary.open,
                )
            )
    except DeliveryError as error:
        raise click.ClickException(f"digest not sent: {error}") from None
    click.echo(f"digest sent to {target}: {summary.open} open case(s)")


@main.group()
def outbox() -> None:
    """Notifications waiting, sent, failed, skipped or withdrawn."""


@outbox.command("list")
@click.option("--status", type=click.Choice(OUTBOX_STATUSES), help="Only rows in this status.")
@click.option("--json", "as_json", is_flag=True, help="JSON, one object per row.")
def outbox_list(status: str | None, as_json: bool) -> None:
    """Notifications (Slack alerts, recovery emails), newest first: the case each is for,
    its channel and reason, where it stands, how many attempts, and the last error.

    A failed row is sent again with `billing-ops outbox retry ID` once its cause is fixed.
    """
    from worker.notifications import outbox as outbox_store

    rows = outbox_store.list_rows(open_engine(cli_settings(existing_install=True)), status=status)
    docs = [
        {
            "id": r.id,
            "case_id": r.case_id,
            "channel": r.channel,
            "reason": r.reason,
            "status": r.status,
            "attempts": r.attempts,
            "last_error": r.last_error,
            "due_at": r.next_attempt_at.isoformat(),
            "updated_at": r.updated_at.isoformat(),
        }
        for r in rows
    ]
    if as_json:
        click.echo(json.dumps(docs, indent=2))
        return
    if not docs:
        say("no notifications" + (f" {status}" if status else ""))
        return
    say(
        f"{'ID':>6}  {'CASE':>6}  {'CHANNEL':<7}  {'REASON':<17}  {'STATUS':<9}  "
        f"{'ATTEMPTS':>8}  LAST ERROR"
    )
    for d in docs:
        say(
            f"{d['id']:>6}  {d['case_id'] or '-':>6}  {clean(d['channel']):<7}  "
            f"{clean(d['reason']):<17}  {d['status']:<9}  {d['attempts']:>8}  "
            f"{clean(d['last_error'] or '')}"
        )


@outbox.command("retry")
@click.argument("outbox_ids", nargs=-1, type=int, required=True)
def outbox_retry(outbox_ids: tuple[int, ...]) -> None:
    """Put failed notifications back on the queue (after fixing an address or a hook)."""
    from worker.broker import build_broker
    from worker.notifications import outbox as outbox_store
    from worker.notifications.queue import enqueue_notifications

    settings = cli_settings(existing_install=True)
    engine = open_engine(settings)
    require_redis(settings)
    reset = outbox_store.reset_failed(engine, list(outbox_ids), utc_now())
    count = enqueue_notifications(build_broker(settings.effective_redis_url, edge=False), reset)
    click.echo(f"requeued {count} notification(s)")
    missing = sorted(set(outbox_ids) - set(reset))
    if missing:  # as `events retry`: the others are done, the exit says not all
        raise click.ClickException(
            "not failed or unknown, left alone: "
            + ", ".join(str(i) for i in missing)
            + " (see billing-ops outbox list --status failed)"
        )
