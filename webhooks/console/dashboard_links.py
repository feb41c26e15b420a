"""Stripe ids in a page's text as links to Stripe's Dashboard (test or live), through the
one mapping of ids to Dashboard pages, ``worker.dashboard``."""

from __future__ import annotations

import re

from markupsafe import Markup, escape

from worker.dashboard import ID_RE, dashboard_url


def link_ids(text: str, *, livemode: bool) -> Markup:
    """``text`` escaped for HTML, each Stripe id in it a link to its Dashboard page."""

    def link(match: re.Match[str]) -> str:
        url = dashboard_url(match.group(0), livemode)
        if url is None:
            return match.group(0)
        return (
            f'<a class="stripe-id" href="{url}" target="_blank" rel="noopener noreferrer">'
            f"{match.group(0)}</a>"
        )

    # Escaping first is safe: the id pattern matches letters, digits and ``_`` only, which
    # escaping never produces or splits.
    return Markup(ID_RE.sub(link, str(escape(text))))
