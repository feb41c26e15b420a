"""Text for the operator's terminal: every human-readable line goes out through ``say``.

Names, ids, notes and keys come from Stripe payloads and API callers; ``worker.textsafety``
shows their control characters as visible escapes instead of letting the terminal obey them.
(``--json`` output needs nothing: ``json.dumps`` writes ASCII, escaping them all.)
"""

from __future__ import annotations

import click

from worker.textsafety import for_terminal


def say(text: str = "", *, err: bool = False) -> None:
    """Print ``text``; its own newlines and tabs stay, every other control is escaped."""
    click.echo(for_terminal(text, one_line=False), err=err)


def clean(value: object) -> str:
    """A value printed inside a line: newlines and tabs escaped too, so it cannot fake a row."""
    return for_terminal(value)
