"""the case list's filters and sorts: money at stake in columns, indexes for keyset pages

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25

``/api/cases``, ``billing-ops cases list`` and the export page through cases by a sort key and
the id (``worker/case_queries.py``). The money at stake lived only inside the finding's JSON;
it is copied here into ``currency`` and ``at_stake_minor`` (the rule of
``rules.findings.RevenueImpact.at_stake_minor``, restated below so this migration keeps
meaning what it meant when later code changes); each sort gets an index ending in ``id``, and
the filter columns one covering index, so the list's total is counted without reading cases.
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

MAX_AMOUNT_MINOR = 10**15
#: Every column the case list filters on: its total is counted from this index alone.
FILTER_COLUMNS = [
    "status",
    "severity",
    "kind",
    "classification",
    "currency",
    "customer_id",
    "opened_at",
    "updated_at",
]
BATCH = 500


def _money(finding_json: str) -> tuple[str, int]:
    """(currency code or "", money at stake) of a stored finding document."""
    try:
        impact = json.loads(finding_json).get("revenue_impact") or {}
    except (ValueError, AttributeError):
        return "", 0
    currency = impact.get("currency")
    code = currency.strip().lower() if isinstance(currency, str) else ""
    if not (len(code) == 3 and code.isascii() and code.isalpha()):
        code = ""
    for amount in (impact.get("amount_minor"), impact.get("mrr_at_risk_minor")):
        if type(amount) is int and 0 < amount <= MAX_AMOUNT_MINOR:
            return code, amount
    return code, 0


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("currency", sa.String(3), nullable=False, server_default=""))
        batch.add_column(
            sa.Column("at_stake_minor", sa.BigInteger, nullable=False, server_default="0")
        )
    connection = op.get_bind()
    cases = sa.table(
        "cases",
        sa.column("id", sa.Integer),
        sa.column("finding", sa.Text),
        sa.column("currency", sa.String),
        sa.column("at_stake_minor", sa.BigInteger),
    )
    last = 0
    while True:
        rows = connection.execute(
            sa.select(cases.c.id, cases.c.finding)
            .where(cases.c.id > last)
            .order_by(cases.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        for case_id, finding in rows:
            currency, at_stake = _money(finding)
            connection.execute(
                cases.update()
                .where(cases.c.id == case_id)
                .values(currency=currency, at_stake_minor=at_stake)
            )
        last = rows[-1][0]
    op.create_index("ix_cases_money", "cases", ["currency", "at_stake_minor", "id"])
    op.create_index(
        "ix_cases_money_desc",
        "cases",
        ["currency", sa.text("at_stake_minor DESC"), sa.text("id DESC")],
    )
    op.create_index("ix_cases_opened", "cases", ["opened_at", "id"])
    op.create_index("ix_cases_updated", "cases", ["updated_at", "id"])
    op.create_index("ix_cases_filters", "cases", FILTER_COLUMNS)


def downgrade() -> None:
    op.drop_index("ix_cases_filters", table_name="cases")
    op.drop_index("ix_cases_money_desc", table_name="cases")
    op.drop_index("ix_cases_updated", table_name="cases")
    op.drop_index("ix_cases_opened", table_name="cases")
    op.drop_index("ix_cases_money", table_name="cases")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("at_stake_minor")
        batch.drop_column("currency")
