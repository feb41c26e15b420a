"""The redaction processor: no secret, signature, card number or raw email in a log line."""

from __future__ import annotations

import json

from worker.logs import MAX_LINE_BYTES, MAX_VALUE_CHARS, redact, render_json_line
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


def test_a_huge_hostile_value_is_cut_before_it_is_scrubbed():
    """A 1 MiB event id (the reported attack) is cut to a bounded, scrubbed value."""
    out = run(event="event_failed", event_id="evt_" + "%" * (1 << 20) + "@x")
    assert len(out["event_id"]) < MAX_VALUE_CHARS + 40
    assert out["event_id"].endswith("chars cut]")


def test_a_line_with_many_large_values_fits_one_pipe_write():
    """However many long values an event has, its JSON line stays under PIPE_BUF and parses."""
    event = redact(None, "info", {"event": "x", **{f"k{i}": "v" * 5000 for i in range(20)}})
    line = render_json_line(None, "info", event)
    assert len(line.encode()) < MAX_LINE_BYTES
    assert json.loads(line)["event"] == "x"


def test_log_lines_are_ascii_json_with_controls_escaped():
    """An escape sequence or bidi override in a value is written as a JSON escape, not raw."""
    line = render_json_line(None, "info", run(event="x", name="a\x1b]8;;u\x07\u202eb"))
    assert line.isascii() and "\\u001b" in line and "\\u202e" in line
