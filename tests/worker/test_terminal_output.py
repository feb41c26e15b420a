"""What the CLI prints for people: control characters from hostile data are shown, not obeyed."""

from __future__ import annotations

from click.testing import CliRunner

from tests.support import customer, envelope, subscription
from worker.cli import main
from worker.textsafety import CONTROL_RE, for_terminal

T0 = 1_764_000_000
OSC8 = "\x1b]8;;https://evil.example\x07click\x1b]8;;\x07"
NAME = f"Mallory{OSC8}\x07\u202eevil\nfake row"


def _hostile_story(tmp_path) -> str:
    """Two subscriptions of one person whose name and ids carry terminal controls."""
    events = [
        envelope("evt_c", "customer.created",
                 customer("cus_h", "m@example.com", created=T0, name=NAME), T0),
        envelope("evt_s1", "customer.subscription.created",
                 subscription("sub_h1", "cus_h", created=T0 + 10), T0 + 10),
        envelope("evt_s2", "customer.subscription.created",
                 subscription("sub_h2\x1b[2J\u202e", "cus_h", created=T0 + 20), T0 + 20),
    ]  # fmt: skip
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(events))
    return str(path)


def _printed(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_lookup_cases_list_and_show_print_no_control_character(tmp_path, monkeypatch):
    """OSC 8, BEL, ESC and U+202E arrive as visible escapes in every human-readable view."""
    monkeypatch.setenv("BILLING_OPS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("BILLING_OPS_LOG_FORMAT", "json")
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET", raising=False)
    _printed("replay", _hostile_story(tmp_path))
    outputs = {
        "lookup": _printed("lookup", "cus_h"),
        "cases list": _printed("cases", "list"),
        "cases show": _printed("cases", "show", "1"),
    }
    for view, text in outputs.items():
        assert CONTROL_RE.search(text) is None, (view, text)
    assert "\\x1b]8;;https://evil.example\\x07" in outputs["lookup"]
    assert "\\u202e" in outputs["cases list"]
    assert "fake row" not in outputs["lookup"].splitlines()[1:2]


def test_for_terminal_escapes_c0_c1_and_bidi_but_keeps_text():
    """Each control becomes its escape; printable text, accents included, is untouched."""
    assert for_terminal("Zoë\x1b[31m\x85\u2066x\u2069") == "Zoë\\x1b[31m\\x85\\u2066x\\u2069"
    assert for_terminal("a\nb\tc", one_line=False) == "a\nb\tc"
    assert for_terminal("a\nb") == "a\\x0ab"
