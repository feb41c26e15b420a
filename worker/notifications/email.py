"""Recovery emails: rendered from Jinja2 templates, sent with the standard library's smtplib.

``SMTP_URL`` names the server: ``smtp://user:pass@host:port`` (``?starttls=true`` to upgrade)
or ``smtps://…`` for implicit TLS. The recipient address is used here, to send, and nowhere
else: logs and the case timeline only ever see it masked.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from jinja2 import select_autoescape

from worker.errors import ConfigurationError, PermanentDeliveryError, TransientDeliveryError
from worker.templating import template_env
from worker.textsafety import strip_controls

#: Seconds before an SMTP conversation is abandoned (and retried later).
DEFAULT_TIMEOUT_SECONDS = 15
DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
TRUE_VALUES = frozenset({"1", "true", "yes", "on"})

_env = template_env(
    "email",
    keep_trailing_newline=True,
    autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
)


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to connect, parsed once from ``SMTP_URL``."""

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    implicit_tls: bool = False
    starttls: bool = False
    timeout: float = DEFAULT_TIMEOUT_SECONDS

    @classmethod
    def from_url(cls, url: str) -> SmtpConfig:
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise ConfigurationError("SMTP_URL must look like smtp://[user:pass@]host[:port]")
        query = parse_qs(parts.query)
        starttls = (query.get("starttls") or ["false"])[0].lower() in TRUE_VALUES
        return cls(
            host=parts.hostname,
            port=parts.port or DEFAULT_PORTS[parts.scheme],
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            implicit_tls=parts.scheme == "smtps",
            starttls=starttls,
        )


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def render(kind: str, context: dict[str, Any]) -> RenderedEmail:
    """The subject, plain text and HTML of the ``kind`` email (templates/email/<kind>.*).

    Every text value is stripped of control characters first (a customer's name is whatever
    they typed: no escape sequence, bidi override or line break reaches the mail), and the
    subject is one line, so nothing in it can start another header.
    """
    context = {
        key: strip_controls(value) if isinstance(value, str) else value
        for key, value in context.items()
    }
    subject = _env.get_template(f"{kind}.subject.j2").render(**context)
    return RenderedEmail(
        subject=strip_controls(" ".join(subject.split())),
        text=_env.get_template(f"{kind}.txt.j2").render(**context),
        html=_env.get_template(f"{kind}.html.j2").render(**context),
    )


def sender_name(email_from: str) -> str:
    """The display name of ``EMAIL_FROM`` (``Acme Billing <billing@acme.test>``)."""
    name, _ = parseaddr(email_from)
    return name or "The billing team"


def build_message(
    rendered: RenderedEmail, *, sender: str, to: str, dedupe_key: str
) -> EmailMessage:
    """A multipart/alternative message whose Message-ID derives from the outbox row, so a
    resend after a crash carries the same id and mail systems can drop the copy."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = rendered.subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "billing-ops.invalid"
    digest = hashlib.sha256(dedupe_key.encode()).hexdigest()[:32]
    message["Message-ID"] = f"<{digest}@{domain}>"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


def valid_address(address: str) -> bool:
    """True when ``address`` is one plain ``local@domain`` address."""
    try:
        parsed = Address(addr_spec=address)
    except (ValueError, IndexError):
        return False
    return bool(parsed.username and parsed.domain)


class SmtpSender:
    """Sends one message per connection: simple, and a broken connection costs one email."""

    def __init__(self, config: SmtpConfig) -> None:
        self._config = config

    def send(self, message: EmailMessage) -> None:
        cfg = self._config
        try:
            if cfg.implicit_tls:
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    cfg.host, cfg.port, timeout=cfg.timeout, context=ssl.create_default_context()
                )
            else:
                client = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
            with client:
                if cfg.starttls:
                    client.starttls(context=ssl.create_default_context())
                if cfg.username:
                    client.login(cfg.username, cfg.password or "")
                client.send_message(message)
        except smtplib.SMTPRecipientsRefused as error:
            answers = list(error.recipients.values())
            codes = [code for code, _ in answers]
            detail = "; ".join(f"{c} {m.decode(errors='replace')}" for c, m in answers)
            if codes and all(code >= 500 for code in codes):
                raise PermanentDeliveryError(f"recipient refused: {detail}") from error
            raise TransientDeliveryError(f"recipient deferred: {detail}") from error
        except smtplib.SMTPAuthenticationError as error:
            raise TransientDeliveryError(f"smtp login failed: {error.smtp_code}") from error
        except smtplib.SMTPResponseException as error:
            reply = error.smtp_error
            reply = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
            text = f"{error.smtp_code} {reply}"
            if error.smtp_code >= 500:
                raise PermanentDeliveryError(f"smtp refused: {text}") from error
            raise TransientDeliveryError(f"smtp deferred: {text}") from error
        except (smtplib.SMTPException, OSError) as error:
            raise TransientDeliveryError(f"smtp unavailable: {type(error).__name__}") from error
