"""Control characters out of text shown to people: an operator's terminal, a plain-text email.

A customer's name, an event id, a note: each is whatever its sender typed. Printed raw, an
escape sequence rewrites the operator's terminal (OSC 8 hides a link behind harmless text,
others retitle the window or move the cursor), BEL rings, and a bidirectional override
(U+202E) shows the rest of a line reversed, so one id reads as another. Here every C0 and C1
control, DEL, the bidi embeddings, overrides, isolates and marks, the zero-width characters
and the line and paragraph separators are either shown as a visible escape (terminals: the
operator sees that something was there) or dropped (email).
"""

from __future__ import annotations

import re

#: C0 controls but tab and newline, DEL and C1, Arabic letter mark, zero-width space/joiners,
#: LRM/RLM, line/paragraph separators, bidi embeddings/overrides, bidi isolates, BOM.
_CONTROLS = (
    "\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff"
)
CONTROL_RE = re.compile(f"[{_CONTROLS}]")
#: The same, tab and newline included: for text that must stay on one line.
LINE_CONTROL_RE = re.compile(f"[\t\n{_CONTROLS}]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def for_terminal(text: object, *, one_line: bool = True) -> str:
    """``text`` safe to print: each control shown as ``\\x1b`` / ``\\u202e``; newlines and tabs
    kept only when ``one_line`` is False (a multi-line handoff)."""
    pattern = LINE_CONTROL_RE if one_line else CONTROL_RE
    return pattern.sub(_visible, "" if text is None else str(text))


def strip_controls(text: str, *, one_line: bool = True) -> str:
    """``text`` without any control character; with ``one_line``, runs of whitespace (line
    breaks and tabs included) become one space, so words on either side stay apart."""
    if one_line:
        text = " ".join(text.split())
    return (LINE_CONTROL_RE if one_line else CONTROL_RE).sub("", text)
