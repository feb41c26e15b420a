"""Why a payment failed, and whether trying the same card again can ever work.

Stripe's decline codes (https://docs.stripe.com/declines/codes) say for each code what the
customer must do; for a hard decline the next step is "use another card" (or the issuer told
Stripe never to retry), and Stripe itself does not retry it ("Automate payment retries",
https://docs.stripe.com/billing/revenue-recovery/smart-retries: "Stripe doesn't retry payments
if … the issuer returned a hard decline code"). A charge Stripe blocked because the card was
declined before has ``outcome.type = blocked`` and ``outcome.reason =
previously_declined_do_not_retry`` (support.stripe.com, "Payment blocked due to excessive
retries"). A soft decline (insufficient_funds, do_not_honor, generic_decline…) may pass later.
"""

from __future__ import annotations

from dataclasses import dataclass

from rules.model import Charge, Invoice
from rules.snapshot import BillingSnapshot

# Decline codes whose documented next step is another payment method, or never to retry.
HARD_DECLINE_CODES = frozenset(
    {
        "card_not_supported",
        "currency_not_supported",
        "do_not_try_again",
        "expired_card",
        "incorrect_number",
        "invalid_account",
        "invalid_number",
        "lost_card",
        "merchant_blacklist",
        "new_account_information_available",
        "pickup_card",
        "restricted_card",
        "revocation_of_all_authorizations",
        "revocation_of_authorization",
        "security_violation",
        "service_not_allowed",
        "stolen_card",
        "stop_payment_order",
        "transaction_not_allowed",
    }
)
# ``outcome.reason`` values that mean Stripe will not send this card to the network again.
DO_NOT_RETRY_REASONS = frozenset({"previously_declined_do_not_retry", "highest_risk_level"})
# The decline code that asks for 3-D Secure: the customer must authenticate, not retry.
AUTHENTICATION_REQUIRED = "authentication_required"
# ``failure_code`` is the generic ``card_declined`` when the decline code sits in the outcome.
_GENERIC_FAILURE_CODES = frozenset({"card_declined", "generic_decline"})


@dataclass(frozen=True, slots=True)
class Decline:
    """The decline of an invoice's last attempt, as far as the snapshot shows it."""

    code: str | None  # the most specific code known (decline code, else failure code)
    hard: bool  # retrying the same card cannot succeed: the customer needs another one
    needs_authentication: bool  # 3-D Secure: the customer completes it on the invoice page
    evidence: str | None  # the event that showed it


NO_DECLINE = Decline(code=None, hard=False, needs_authentication=False, evidence=None)


def failed_charge_of(snapshot: BillingSnapshot, invoice: Invoice) -> Charge | None:
    """The charge of an invoice's payment: linked by id or payment intent (current API
    charges name no invoice), else the customer's latest failed charge of that amount since
    the invoice was created."""
    linked = snapshot.charge(invoice.charge_id)
    if linked is not None:
        return linked
    charges = sorted(snapshot.charges, key=lambda c: (c.created or 0, c.id), reverse=True)
    for charge in charges:
        if charge.invoice_id == invoice.id or (
            invoice.payment_intent_id and charge.payment_intent_id == invoice.payment_intent_id
        ):
            return charge
    return next(
        (
            c
            for c in charges
            if c.customer_id == invoice.customer_id
            and c.status == "failed"
            and c.amount == invoice.amount_due
            and (c.created or 0) >= (invoice.created or 0)
        ),
        None,
    )


def _charge_code(charge: Charge) -> str | None:
    """The decline code of a failed charge: ``outcome.reason`` when ``failure_code`` is the
    generic card_declined, else the failure code itself (e.g. expired_card)."""
    if charge.failure_code and charge.failure_code not in _GENERIC_FAILURE_CODES:
        return charge.failure_code
    return charge.outcome_reason or charge.failure_code


def read_decline(snapshot: BillingSnapshot, invoice: Invoice) -> Decline:
    """What the last failed attempt of ``invoice`` says: hard decline, authentication, or soft."""
    charge = failed_charge_of(snapshot, invoice)
    failed = charge if charge is not None and charge.status == "failed" else None
    code = invoice.decline_code or (_charge_code(failed) if failed else None)
    blocked = failed is not None and (
        failed.outcome_type == "blocked" and failed.outcome_reason in DO_NOT_RETRY_REASONS
    )
    authentication = invoice.requires_action or code == AUTHENTICATION_REQUIRED
    return Decline(
        code=code,
        hard=not authentication and (code in HARD_DECLINE_CODES or blocked),
        needs_authentication=authentication,
        evidence=failed.event_id if failed else None,
    )
