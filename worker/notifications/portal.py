"""The one link a recovery email carries: a billing-portal session, else the hosted invoice.

A portal session is short-lived, so it is created at send time, never when the case changes.
Without ``STRIPE_API_KEY`` (or when Stripe refuses the customer) the invoice's own hosted
page is the link: it lets the customer pay the invoice with a new card.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import stripe
import structlog

from worker.errors import PermanentDeliveryError, TransientDeliveryError
from worker.stripe_api import stripe_client

log = structlog.get_logger()

#: Seconds before a Stripe API call is abandoned (and the email retried later).
DEFAULT_TIMEOUT_SECONDS = 15
PORTAL, HOSTED_INVOICE = "billing_portal", "hosted_invoice"


@dataclass(frozen=True)
class PaymentLink:
    url: str
    source: str  # billing_portal | hosted_invoice


@dataclass(frozen=True)
class PaymentLinks:
    """Chooses and, for the portal, creates the payment link of one email."""

    api_key: str | None = field(default=None, repr=False)
    api_base: str | None = None
    return_url: str | None = None

    def link_for(
        self,
        *,
        kind: str,
        customer_id: str,
        hosted_invoice_url: str | None,
        invoice_page: bool = False,
    ) -> PaymentLink:
        """A failed renewal Stripe will retry gets the portal (to change the card first).
        ``invoice_page`` — 3-D Secure, a hard decline, retries over — gets the hosted invoice
        page: authentication and paying an open invoice happen there, and a new card in the
        portal would not pay it (support.stripe.com, "Completing a next action for
        PaymentIntents created with one-off invoices": the hosted_invoice_url of
        invoice.payment_action_required is where the customer completes the payment)."""
        if kind == "failed_renewal" and self.api_key and not invoice_page:
            url = self._portal_session(customer_id)
            if url:
                return PaymentLink(url, PORTAL)
        if hosted_invoice_url:
            return PaymentLink(hosted_invoice_url, HOSTED_INVOICE)
        raise PermanentDeliveryError("no payment link: no portal session and no hosted invoice")

    def _portal_session(self, customer_id: str) -> str | None:
        assert self.api_key is not None
        client = stripe_client(self.api_key, self.api_base, DEFAULT_TIMEOUT_SECONDS)
        params: dict[str, str] = {"customer": customer_id}
        if self.return_url:
            params["return_url"] = self.return_url
        try:
            session = client.v1.billing_portal.sessions.create(params=params)  # type: ignore[arg-type]
        except (stripe.APIConnectionError, stripe.RateLimitError) as error:
            raise TransientDeliveryError(f"stripe unreachable: {type(error).__name__}") from error
        except stripe.StripeError as error:
            if (error.http_status or 0) >= 500:
                raise TransientDeliveryError(f"stripe answered {error.http_status}") from error
            log.warning(
                "portal_session_refused",
                customer_id=customer_id,
                status=error.http_status,
                code=error.code,
            )
            return None
        return session.url
