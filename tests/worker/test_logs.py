"""The redaction processor: no secret, signature, card number or raw email in a log line."""

from __future__ import annotations

from worker.logs import redact
from worker.pii import mask_email


def run(**event):
    return redact(None, "info", dict(event))


def test_emails_are_masked_anywhere_in_a_value():
    """An email inside free text keeps its first letter and domain only."""
    out = run(event="mail_sent", note="sent to jane.doe@example.com today")
    assert out["note"] == "sent to j***@example.com today"


def test_secret_keys_are_redacted():
    """Stripe secret and restricted keys and webhook secrets never appear."""
    out = run(event="x", detail="key sk_live_51Habc123 and whsec_abcDEF_123 and rk_test_zz9")
    assert "sk_live" not in out["detail"] and "whsec_" not in out["detail"]
    assert "rk_test" not in out["detail"]


def test_signature_header_values_are_redacted():
    """A Stripe-Signature value is removed whatever key it is under."""
    out = run(event="x", header="t=1764000000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff")
    assert "5257a869" not in out["header"]


def test_card_numbers_are_redacted_but_other_numbers_kept():
    """A Luhn-valid 16-digit number is a card; an amount or timestamp is not."""
    out = run(event="x", text="card 4242 4242 4242 4242 paid 1999 at 1764000000")
    assert "4242 4242" not in out["text"]
    assert "1999" in out["text"] and "1764000000" in out["text"]


def test_secret_named_keys_are_redacted_in_nested_values():
    """Keys like authorization or token are blanked even deep inside a mapping."""
    out = run(event="x", request={"headers": {"Authorization": "Bearer abc", "Accept": "json"}})
    assert out["request"]["headers"] == {"Authorization": "[redacted]", "Accept": "json"}


def test_mask_email_handles_missing_values():
    """None stays None; a string without @ is fully hidden."""
    assert mask_email(None) is None
    assert mask_email("not-an-email") == "***"


def test_safe_keys_still_mask_an_email():
    """Even a key billing-ops fills itself cannot carry a raw email through."""
    out = run(event="sent to x@example.com")
    assert out["event"] == "sent to x***@example.com"


def test_plain_text_passes_unchanged():
    """Text with nothing to scrub comes back as it was."""
    text = "invoice in_123 attempt 2 for 2900 usd"
    assert run(event="x", note=text)["note"] == text
