"""The operator digest: open cases by kind with the money at stake, for stdout, Slack or email.

Money is summed per currency in minor units and formatted only when printed: two currencies
are never added together.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate

from sqlalchemy import Engine, select

from rules.formatting import format_money
from worker.case_document import load_document
from worker.errors import ConfigurationError
from worker.store.db import read_session
from worker.store.tables import CaseRow

OPEN_STATUSES = ("open", "acknowledged")
_DURATION_RE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class KindSummary:
    """Open cases of one kind: how many, how many new in the window, and money per currency."""

    kind: str
    open: int
    new: int
    at_stake: tuple[tuple[str, int], ...]
    mrr_at_risk: tuple[tuple[str, int], ...]
    mrr_unknown: int = 0  # cases whose MRR at risk the rules could not know


@dataclass(frozen=True)
class Digest:
    since: datetime
    now: datetime
    kinds: tuple[KindSummary, ...]

    @property
    def open(self) -> int:
        return sum(k.open for k in self.kinds)

    @property
    def new(self) -> int:
        return sum(k.new for k in self.kinds)


def parse_duration(text: str) -> timedelta:
    """``90m``, ``24h``, ``7d`` → a timedelta."""
    match = _DURATION_RE.match(text)
    if not match:
        raise ConfigurationError(f"a duration looks like 24h, 90m or 7d, got {text!r}")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def build_digest(engine: Engine, *, since: datetime, now: datetime) -> Digest:
    """Summarise every open (or acknowledged) case; ``new`` counts those opened since."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    stake: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    mrr: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    mrr_unknown: dict[str, int] = defaultdict(int)
    with read_session(engine) as session:
        rows = session.execute(
            select(CaseRow.kind, CaseRow.opened_at, CaseRow.finding).where(
                CaseRow.status.in_(OPEN_STATUSES)
            )
        ).all()
    for kind, opened_at, finding_json in rows:
        impact = load_document(finding_json).finding.revenue_impact
        currency = (impact.currency or "???").lower()
        counts[kind][0] += 1
        opened = opened_at if opened_at.tzinfo else opened_at.replace(tzinfo=UTC)
        if opened >= since:
            counts[kind][1] += 1
        stake[kind][currency] += impact.amount_minor
        if impact.mrr_at_risk_minor is None:
            mrr_unknown[kind] += 1
        mrr[kind][currency] += impact.mrr_at_risk_minor or 0
    kinds = tuple(
        KindSummary(
            kind=kind,
            open=counts[kind][0],
            new=counts[kind][1],
            at_stake=tuple(sorted((c, a) for c, a in stake[kind].items() if a)),
            mrr_at_risk=tuple(sorted((c, a) for c, a in mrr[kind].items() if a)),
            mrr_unknown=mrr_unknown[kind],
        )
        for kind in sorted(counts)
    )
    return Digest(since=since, now=now, kinds=kinds)


def _money(amounts: tuple[tuple[str, int], ...], unknown: int = 0) -> str:
    shown = [format_money(a, c) for c, a in amounts]
    if unknown:
        shown.append(f"{unknown} unknown")
    return ", ".join(shown) or "-"


def _totals(digest: Digest, attr: str) -> tuple[tuple[str, int], ...]:
    total: dict[str, int] = defaultdict(int)
    for kind in digest.kinds:
        for currency, amount in getattr(kind, attr):
            total[currency] += amount
    return tuple(sorted(total.items()))


def render_text(digest: Digest) -> str:
    """A plain-text table an operator reads in a terminal, a Slack code block or an email."""
    lines = [
        f"billing-ops digest {digest.now:%Y-%m-%d %H:%M} UTC",
        f"open cases: {digest.open} ({digest.new} new since {digest.since:%Y-%m-%d %H:%M} UTC)",
    ]
    if not digest.kinds:
        return "\n".join([*lines, "nothing open."])
    header = f"{'kind':<24}{'open':>6}{'new':>6}  {'at stake':<22}{'MRR at risk'}"
    lines += ["", header]
    for k in digest.kinds:
        lines.append(
            f"{k.kind:<24}{k.open:>6}{k.new:>6}  {_money(k.at_stake):<22}"
            f"{_money(k.mrr_at_risk, k.mrr_unknown)}"
        )
    lines.append(
        f"{'total':<24}{digest.open:>6}{digest.new:>6}  "
        f"{_money(_totals(digest, 'at_stake')):<22}"
        f"{_money(_totals(digest, 'mrr_at_risk'), sum(k.mrr_unknown for k in digest.kinds))}"
    )
    return "\n".join(lines)


def digest_email(text: str, *, sender: str, to: str, open_cases: int) -> EmailMessage:
    """The digest as a plain-text email to the operators' address."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = f"billing-ops digest: {open_cases} open case(s)"
    message["Date"] = formatdate(usegmt=True)
    message.set_content(text)
    return message
