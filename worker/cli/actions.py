"""``billing-ops act``: plan an action on a case, then (with ``--yes``) execute it once."""

from __future__ import annotations

import getpass

import click

from rules.actions import ActionPlan, ActionRequest, ActionType, LinkChannel, Refusal
from rules.formatting import format_money
from worker.cli.app import cli_settings, main, open_engine, utc_now
from worker.cli.operator import _case_id
from worker.errors import BillingOpsError
from worker.logs import configure_logging

#: The case's recommended action that ``act CASE_ID`` takes when no ACTION is named.
_DEFAULT_FOR = {
    "cancel_subscription": "cancel_subscription",
    "refund_charge": "refund_charge",
    "send_portal_link": "send_payment_link",
    "send_invoice_link": "send_payment_link",
}


@main.command()
@click.argument("case_id")
@click.argument("action", required=False, type=click.Choice([t.value for t in ActionType]))
@click.option("--target", help="The id to act on, when the case names several.")
@click.option("--amount", type=int, help="Refund this much (minor units), not the whole rest.")
@click.option("--at-period-end", is_flag=True, help="Cancel when the paid period ends.")
@click.option("--confirm-contract", is_flag=True, help="Confirm an annual/seat/prorated shape.")
@click.option(
    "--print",
    "print_link",
    is_flag=True,
    help="send_payment_link: print the link to paste instead of emailing it.",
)
@click.option("--yes", is_flag=True, help="Execute; without it only the plan is shown.")
@click.option("--by", "actor", default=getpass.getuser, help="Operator name for the audit.")
def act(
    case_id: str,
    action: str | None,
    target: str | None,
    amount: int | None,
    at_period_end: bool,
    confirm_contract: bool,
    print_link: bool,
    yes: bool,
    actor: str,
) -> None:
    """Act on a case: show exactly what will happen; with --yes, do it through Stripe once."""
    from worker.actions import (
        ContractConfirmationRequiredError,
        LinkDelivery,
        already_done,
        execute,
        idempotency_key,
        plan_for_case,
        reconcile_pending,
    )
    from worker.cases import get_case
    from worker.notifications.recovery_emails import connect
    from worker.stripe_api import stripe_client

    settings = cli_settings(existing_install=True)
    configure_logging(settings.log_format)  # log lines to stderr, the plan and result to stdout
    engine = open_engine(settings)
    number = _case_id(case_id)
    client = (
        stripe_client(settings.stripe_api_key, settings.stripe_api_base)
        if settings.stripe_api_key
        else None
    )
    try:
        if action is None:
            recommended = get_case(engine, number)["recommended_action"]["type"]
            if recommended not in _DEFAULT_FOR:
                raise click.ClickException(
                    f"case {number} recommends {recommended}: name the ACTION to take"
                )
            action = _DEFAULT_FOR[recommended]
        channel = None
        if action == ActionType.SEND_PAYMENT_LINK:
            channel = LinkChannel.PRINT if print_link else LinkChannel.EMAIL
        request = ActionRequest(ActionType(action), target, amount, at_period_end, channel)
        for settled in reconcile_pending(engine, client, number, utc_now()):
            click.echo(f"settled an interrupted attempt: {settled}")
        done = already_done(engine, number, request)
        if done is not None:
            click.echo(f"already done, nothing sent: {done}")
            return
        plan = plan_for_case(engine, number, request, utc_now(), settings.rules, client)
    except BillingOpsError as error:
        raise click.ClickException(str(error)) from None
    if isinstance(plan, Refusal):
        raise click.ClickException(f"refused: {plan.reason}")
    _show(number, plan, idempotency_key(number, plan.mode, plan.target))
    if not yes:
        click.echo("plan only: re-run with --yes to execute")
        return
    links = LinkDelivery(connect(settings), settings.portal_return_url)
    try:
        outcome = execute(
            engine,
            client,
            number,
            plan,
            actor=actor,
            now=utc_now(),
            contract_confirmed=confirm_contract,
            links=links,
        )
    except ContractConfirmationRequiredError:
        raise click.ClickException("the contract shape above needs --confirm-contract") from None
    except BillingOpsError as error:
        raise click.ClickException(str(error)) from None
    if outcome.repeated:
        click.echo(f"already done, nothing sent: {outcome.detail}")
    else:
        click.echo(f"done: {outcome.detail} (Stripe request {outcome.stripe_request_id or '-'})")
    if outcome.link_url and plan.channel is LinkChannel.PRINT:
        click.echo(outcome.link_url)


def _show(case_id: int, plan: ActionPlan, key: str) -> None:
    money = format_money(plan.amount_minor, plan.currency) if plan.amount_minor else "none"
    click.echo(f"case {case_id}: {plan.summary}")
    click.echo(f"  target:      {plan.target or '-'} (customer {plan.customer_id or '-'})")
    click.echo(f"  money:       {money}")
    if plan.link:
        click.echo(f"  link:        {plan.link.replace('_', ' ')} ({plan.channel})")
    click.echo(f"  reversible:  {'yes' if plan.reversible else 'NO'}")
    if plan.undo:
        click.echo(f"  undo:        {plan.undo}")
    for shape in plan.contract_shape:
        click.echo(f"  contract:    {shape} (confirm with --confirm-contract)")
    click.echo(f"  idempotency: {key}")
