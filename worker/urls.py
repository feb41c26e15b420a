"""Service URLs as they may be printed or logged, and the links billing-ops hands out."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def safe_url(url: str) -> str:
    """A service URL fit to print: any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def case_page_url(public_base_url: str, case_id: int) -> str:
    """The web console's page of a case: where a Slack alert sends the operator."""
    return f"{public_base_url.rstrip('/')}/cases/{case_id}"
