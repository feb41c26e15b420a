"""The console's one blueprint: its templates, its static files, its headers and errors."""

from __future__ import annotations

from flask import Blueprint, Response, render_template
from flask_wtf.csrf import CSRFError
from markupsafe import Markup
from werkzeug.exceptions import HTTPException

from rules.formatting import format_money
from webhooks.console.dashboard_links import link_ids
from webhooks.console.security import add_security_headers
from worker.pii import scrub_text

bp = Blueprint(
    "console",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/console/static",
)
bp.after_request(add_security_headers)


@bp.app_template_filter("label")
def label(value: str | None) -> str:
    """``accidental_duplicate`` → ``accidental duplicate``: vocabulary words for people."""
    return (value or "").replace("_", " ")


@bp.app_template_filter("money")
def money(amount_minor: int | None, currency: str | None) -> str:
    """Integer minor units and their currency as people read them (``rules.formatting``):
    lookup gives amounts as numbers, like cases."""
    return format_money(amount_minor, currency)


@bp.app_template_filter("scrub")
def scrub(value: str | None) -> str:
    """Free text from Stripe, callers or errors: no secret, card number or full address."""
    return scrub_text(value or "")


@bp.app_template_global("stripe_links")
def stripe_links(text: str | None, livemode: bool) -> Markup:
    """Scrubbed text with each Stripe id linked to its Dashboard page (test or live)."""
    return link_ids(scrub_text(text or ""), livemode=livemode)


@bp.errorhandler(CSRFError)
def csrf_refused(error: CSRFError) -> tuple[str, int]:
    """A form posted without its token (or with a stale one) changes nothing."""
    return render_template(
        "console/error.html",
        title="Form refused",
        message="This form was sent without a valid security token, so nothing was changed. "
        "Reload the page and try again.",
    ), 400


@bp.errorhandler(HTTPException)
def page_error(error: HTTPException) -> tuple[str, int] | Response:
    return render_template(
        "console/error.html", title=error.name, message=error.description
    ), error.code or 500
