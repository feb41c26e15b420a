"""What the rules decide: findings, each with the safest correct action and its evidence.

A finding is plain data the worker turns into one triage case per ``key``; the wording here
(reasoning, steps, question) is what an operator reads, so it names ids, amounts and dates.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from rules.config import RulesConfig
from rules.currency import convert_minor, currency_code
from rules.formatting import MAX_DISPLAY_AMOUNT_MINOR

KINDS = frozenset(
    {
        "duplicate_subscription",
        "duplicate_charge",
        "failed_renewal",
        "incomplete_checkout",
        "churn_signal",
        "dispute",
        "fraud_warning",
    }
)
CLASSIFICATIONS = frozenset(
    {
        "accidental_duplicate",
        "team_purchase",
        "failed_payment",
        "missing_self_serve",
        "product_failure",
        "unclassified",
    }
)
SEVERITIES = ("low", "medium", "high", "critical")
#: Severity → rank, for comparisons anywhere in billing-ops.
SEVERITY_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}
ACTION_TYPES = frozenset(
    {
        "cancel_subscription",
        "refund_charge",
        "send_portal_link",
        "send_invoice_link",
        "retry_payment",
        "respond_to_dispute",
        "contact_customer",
        "no_op",
    }
)

VERIFY_CONTRACT_STEP = (
    "Verify the contract shape first (annual term, seat count, prorations) before changing anything"
)


@dataclass(frozen=True, slots=True)
class RevenueImpact:
    """Money a case concerns: ``amount_minor`` to return or recover, and MRR that may churn
    (None when it cannot be known: metered or tiered prices, a discount without its terms)."""

    currency: str | None
    amount_minor: int
    mrr_at_risk_minor: int | None

    @property
    def at_stake_minor(self) -> int:
        """The one number a case list shows and sorts by as "money at stake": the amount to
        return or recover, else the MRR that may churn, else 0 (unknown or absurd amounts).
        It is in ``currency`` and only ever compared with amounts in that same currency."""
        for amount in (self.amount_minor, self.mrr_at_risk_minor):
            if (
                isinstance(amount, int)
                and not isinstance(amount, bool)
                and 0 < amount <= MAX_DISPLAY_AMOUNT_MINOR
            ):
                return amount
        return 0

    @property
    def currency_code(self) -> str | None:
        """The lower-case three-letter code of ``currency``, None when it is not one."""
        return currency_code(self.currency)


@dataclass(frozen=True, slots=True)
class RecommendedAction:
    """The first action to take, and the ordered, safest-first steps around it."""

    type: str
    target: str | None
    reversible: bool
    steps: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Finding:
    """One billing problem of one customer, classified, with evidence and a recommended action."""

    kind: str
    classification: str
    severity: str
    customer_id: str
    subjects: tuple[str, ...]
    evidence: tuple[str, ...]
    revenue_impact: RevenueImpact
    recommended_action: RecommendedAction
    reasoning: str
    question: str | None
    verify_contract: bool
    product_gaps: tuple[str, ...]
    signals: tuple[str, ...]
    auto_clear: bool
    #: What the guard over all of a person's findings changed in this one, and why.
    guard_notes: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The stable case key: one case per kind and primary subject."""
        return f"{self.kind}:{self.subjects[0]}"


def evidence_of(*event_ids: str | None) -> tuple[str, ...]:
    """Evidence as the sorted, de-duplicated event ids (Nones dropped)."""
    return tuple(sorted({e for e in event_ids if e}))


def unique(values: Iterable[str | None]) -> tuple[str, ...]:
    """Values in first-seen order without repeats or Nones."""
    return tuple(dict.fromkeys(v for v in values if v))


def severity_for_mrr(
    mrr_minor: int | None, config: RulesConfig, floor: str = "low", *, currency: str | None
) -> str:
    """Severity from monthly revenue at risk, never below ``floor``.

    The thresholds are in ``config.severity_currency``; MRR in another currency is converted
    with ``config.rates`` first (VND 200,000 a month is about 8 USD: low, not critical). When
    it cannot be compared (MRR unknown, or a currency without a rate) the level is ``medium``:
    an amount of unknown size is neither buried as low nor escalated.
    """
    value = convert_minor(mrr_minor, currency, config.severity_currency, config.rates)
    if value is None:
        level = "medium"
    elif value >= config.mrr_critical_minor:
        level = "critical"
    elif value >= config.mrr_high_minor:
        level = "high"
    elif value >= config.mrr_medium_minor:
        level = "medium"
    else:
        level = "low"
    return max_severity(level, floor)


def max_severity(*levels: str) -> str:
    """The most severe of the given levels."""
    return max(levels, key=SEVERITIES.index)


def with_contract_check(steps: Iterable[str], verify_contract: bool) -> tuple[str, ...]:
    """Steps, prefixed with the contract check when the contract is not a plain monthly seat."""
    steps = tuple(steps)
    return (VERIFY_CONTRACT_STEP, *steps) if verify_contract else steps


def merge_findings(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """One finding per key, sorted by key.

    When two rules speak about the same subject (e.g. a downgrade event on a subscription that
    also has cancel_at_period_end on), the state-derived finding is kept as the base and the
    other's signals, evidence, subjects and product gaps are added to it.
    """
    merged: dict[str, Finding] = {}
    for finding in findings:
        current = merged.get(finding.key)
        if current is None or current == finding:
            merged[finding.key] = finding
            continue
        base, extra = _base_first(current, finding)
        merged[finding.key] = replace(
            base,
            severity=max_severity(base.severity, extra.severity),
            subjects=unique((*base.subjects, *extra.subjects)),
            evidence=evidence_of(*base.evidence, *extra.evidence),
            signals=unique((*base.signals, *extra.signals)),
            product_gaps=unique((*base.product_gaps, *extra.product_gaps)),
            verify_contract=base.verify_contract or extra.verify_contract,
        )
    return tuple(merged[key] for key in sorted(merged))


def _base_first(a: Finding, b: Finding) -> tuple[Finding, Finding]:
    """Order two same-key findings deterministically: state-derived, then severity, then text."""

    def rank(f: Finding) -> tuple[bool, int, str]:
        return (f.auto_clear, SEVERITIES.index(f.severity), repr(f))

    return (a, b) if rank(a) >= rank(b) else (b, a)
