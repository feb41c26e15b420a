"""the audit log of operators' actions on cases

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "action_audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "case_id", sa.Integer, sa.ForeignKey("cases.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("at", TZ, nullable=False),
        sa.Column("actor", sa.String(120), nullable=False),
        sa.Column("action", sa.String(60), nullable=False),
        sa.Column("target", sa.String(255)),
        sa.Column("amount_minor", sa.BigInteger),
        sa.Column("currency", sa.String(8)),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("stripe_request_id", sa.String(255)),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_action_audit_case", "action_audit", ["case_id", "id"])
    op.create_index("ix_action_audit_idempotency_key", "action_audit", ["idempotency_key"])


def downgrade() -> None:
    op.drop_index("ix_action_audit_idempotency_key", table_name="action_audit")
    op.drop_index("ix_action_audit_case", table_name="action_audit")
    op.drop_table("action_audit")
