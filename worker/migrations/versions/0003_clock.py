"""the clock: the due-time index and the one-run-at-a-time lease

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "clock_due",
        sa.Column("customer_id", sa.String(255), primary_key=True),
        sa.Column("due_at", sa.BigInteger),
        sa.Column("reason", sa.String(40)),
        sa.Column("subject", sa.String(255)),
        sa.Column("evaluated_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_index("ix_clock_due_due_at", "clock_due", ["due_at"])
    lease = op.create_table(
        "clock_lease",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("holder", sa.String(64)),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("runs", sa.Integer, nullable=False, server_default="0"),
    )
    op.bulk_insert(lease, [{"name": "clock", "holder": None, "expires_at": 0, "runs": 0}])


def downgrade() -> None:
    op.drop_table("clock_lease")
    op.drop_index("ix_clock_due_due_at", table_name="clock_due")
    op.drop_table("clock_due")
