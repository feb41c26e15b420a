"""Recovery emails carry no control characters and no header a customer's name could add."""

from __future__ import annotations

from tests.notifications.builders import failed_renewal_events
from tests.notifications.harness import deliver_all, run
from worker.notifications.email import build_message, render
from worker.textsafety import CONTROL_RE

OSC8_LINK = "\x1b]8;;https://evil.example\x07click here\x1b]8;;\x07"
HOSTILE = f"\u202eJane{OSC8_LINK}\x07\r\nBcc: victim@evil.example"


def test_a_hostile_name_reaches_the_email_without_controls(engine, channels, policy, smtp):
    """An OSC 8 link, BEL, U+202E and CR LF in the customer's name are dropped from the mail."""
    deliver_all(engine, run(engine, failed_renewal_events(name=HOSTILE), policy), channels)
    [message] = smtp.inbox.messages
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for body in (text, html, message["Subject"]):  # SMTP's own line ends aside
        assert CONTROL_RE.search(body.replace("\r\n", "\n")) is None, repr(body)
    assert "Jane]8;;https://evil.example" in text  # what is left is inert text


def test_subject_stays_one_header_whatever_the_values():
    """CR LF in a value cannot start a second header (``Bcc:``) in the message."""
    context = {
        "first_name": HOSTILE,
        "plan": "Pro\r\nBcc: victim@evil.example\x1b[2J",
        "amount": "29.00 USD\u202e",
        "card": None,
        "link": "https://invoice.example/i/1",
        "pay_invoice": True,
        "authenticate": False,
        "next_attempt": None,
        "sender_name": "Acme\x07 Billing",
    }
    rendered = render("failed_renewal", context)
    assert CONTROL_RE.search(rendered.subject) is None and "\n" not in rendered.subject
    assert CONTROL_RE.search(rendered.text) is None
    message = build_message(
        rendered, sender="Acme <billing@acme.test>", to="jane@example.com", dedupe_key="k"
    )
    assert message["Bcc"] is None
    headers = message.as_string().split("\n\n", 1)[0].splitlines()
    assert not [line for line in headers if line.lower().startswith("bcc")]
