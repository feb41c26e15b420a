"""Masking of personal data and scrubbing of secrets from text.

One place decides what an operator, a Slack channel or a log line may see.

Every pattern here runs in time linear in the text, whatever the text: a log line can carry
an attacker's event id (``"evt_" + "%" * 100_000 + "@x"`` once held a web request 30 s under
the old email pattern). Python's backtracking engine is kept linear by construction:

* a match may only *start* where its pattern could not have started one character earlier
  (a negative look-behind on the pattern's own first class), so each run of candidate
  characters is tried once, not once per position;
* runs are consumed possessively (``++``, Python 3.11+): a failed match never gives
  characters back to try shorter splits;
* repetitions that must backtrack (card numbers with separators) are bounded by a small
  constant (at most 19 digits).

``bench/redaction.py`` measures it on adversarial inputs; ``tests/worker/test_redaction.py``
holds the known pathological inputs and a property over adversarial strings.
"""

from __future__ import annotations

import re

#: Characters of an email's local part (the practical subset of RFC 5322 "atext").
_LOCAL = r"A-Za-z0-9._%+\-"
#: ``local@domain.tld``: the local part starts where no local character precedes it and is
#: taken whole; the domain is labels each followed by a dot that is followed by another label
#: character (so a sentence's final "." is not taken), then a top-level domain of letters.
EMAIL_RE = re.compile(
    rf"(?<![{_LOCAL}])[{_LOCAL}]++@(?:[A-Za-z0-9-]++\.(?=[A-Za-z0-9-]))++[A-Za-z]{{2,}}+"
)
SECRET_KEY_RE = re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]++|\bwhsec_[A-Za-z0-9_\-]++")
SIGNATURE_RE = re.compile(r"\bt=\d++(?:,\s*+v\d++=[A-Za-z0-9]++)++")
#: A run of digits with single spaces or dashes between them, standing alone: not inside a
#: word, so the digit run of a Stripe id (``sub_1234567890123456``, ``pi_3Mtw…``) is never a
#: "card". The run is taken whole, whatever its length, and searched for cards inside it: a
#: length cap here would split ``1111 4242-4242-4242-4242`` into a non-card and a remainder
#: that can no longer start a match.
CARD_CANDIDATE_RE = re.compile(r"(?<![\w-])[0-9](?:[ -]?[0-9])*+")
_WORD_CHAR_RE = re.compile(r"\w")
BEARER_RE = re.compile(r"(?i)\bbearer\s++[A-Za-z0-9._~+/=-]++")

REDACTED = "[redacted]"
#: Cheap first looks (substring tests run at memory speed): a pattern runs only on text that
#: holds its trigger, so the common log value costs a few ``in`` tests.
_DIGIT_RE = re.compile(r"[0-9]")
_DIGIT_GROUP_RE = re.compile(r"[0-9]++")


def mask_email(email: str | None) -> str | None:
    """``jane.doe@example.com`` → ``j***@example.com``: enough to recognise, not to contact."""
    if not email:
        return email
    local, _, domain = email.partition("@")
    if not domain:
        return "***"
    return f"{local[:1]}***@{domain}"


#: Luhn's doubled digit (``2 × d``, minus 9 past 9).
_LUHN_DOUBLE = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum every payment card number satisfies (``digits``: ASCII digits)."""
    values = [int(d) for d in reversed(digits)]
    return (sum(values[0::2]) + sum(_LUHN_DOUBLE[v] for v in values[1::2])) % 10 == 0


def _mask_card(match: re.Match[str]) -> str:
    """Remove every card inside a candidate run: the longest window of whole digit groups
    (13–19 digits, Luhn-valid) ending at each group end, scanning from the right
    (``4242-4242-4242-4242 1`` is a card and a number; ``1111 4242-4242-4242-4242`` a number
    and a card).

    Each group end extends leftwards over at most 19 digits keeping a running Luhn sum, so
    the cost is linear in the run's length.
    """
    text = match.group(0)
    groups = [(m.start(), m.end()) for m in _DIGIT_GROUP_RE.finditer(text)]
    if _WORD_CHAR_RE.match(match.string, match.end()):
        groups.pop()  # the last group runs into a word (``…4242abc``): it is not a number
        if not groups:
            return text
    if len(groups) == 1 and groups[0] == (0, len(text)):  # no separators: the whole run or nothing
        return REDACTED if 13 <= len(text) <= 19 and luhn_ok(text) else text
    digits = [int(text[i]) for start, end in groups for i in range(start, end)]
    # for each digit: the text offset of its group when it opens one
    opens: dict[int, int] = {}
    ends: list[tuple[int, int]] = []  # (digit count so far, text offset) at each group's end
    count = 0
    for start, end in groups:
        opens[count] = start
        count += end - start
        ends.append((count, end))
    pieces: list[str] = []
    cut = len(text)  # text after ``cut`` is already decided
    for stop, text_end in reversed(ends):
        if text_end > cut or stop < 13:
            continue
        total, found = 0, None
        for length in range(1, min(stop, 19) + 1):
            first = stop - length
            value = digits[first]
            total += _LUHN_DOUBLE[value] if length % 2 == 0 else value
            if length >= 13 and first in opens and total % 10 == 0:
                found = first
        if found is not None:
            pieces.append(text[text_end:cut])
            pieces.append(REDACTED)
            cut = opens[found]
    pieces.append(text[:cut])
    return "".join(reversed(pieces))


def scrub_text(text: str) -> str:
    """Remove secret keys, signature headers, bearer tokens and card numbers; mask emails."""
    if "sk_" in text or "rk_" in text or "whsec_" in text:
        text = SECRET_KEY_RE.sub(REDACTED, text)
    if "t=" in text:
        text = SIGNATURE_RE.sub(REDACTED, text)
    if "bearer" in text.lower():
        text = BEARER_RE.sub("Bearer " + REDACTED, text)
    if _DIGIT_RE.search(text):
        text = CARD_CANDIDATE_RE.sub(_mask_card, text)
    if "@" in text:
        text = EMAIL_RE.sub(lambda m: mask_email(m.group(0)) or "", text)
    return text


#: Text scrubbed past a cap, so that a card or key straddling it is still recognised whole.
SCRUB_MARGIN = 256


def scrub_capped(text: str, limit: int, *, keep_tail: bool = False) -> str:
    """``text`` scrubbed and cut to ``limit`` characters (its end when ``keep_tail``, for a
    traceback); only a bounded slice is ever scrubbed, whatever the length of ``text``."""
    if len(text) <= limit:
        return scrub_text(text)
    dropped = len(text) - limit
    if keep_tail:
        return f"[{dropped} chars cut]…" + scrub_text(text[-(limit + SCRUB_MARGIN) :])[-limit:]
    return scrub_text(text[: limit + SCRUB_MARGIN])[:limit] + f"…[{dropped} chars cut]"
