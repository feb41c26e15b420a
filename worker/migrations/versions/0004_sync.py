"""sync and backfill cursors, and the people a sync still has to evaluate

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sync_cursors",
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("since", sa.BigInteger, nullable=False),
        sa.Column("cursor", sa.String(255)),
        sa.Column("listed", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("objects", sa.Integer, nullable=False, server_default="0"),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("finished_at", TZ),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_table(
        "sync_pending",
        sa.Column("customer_id", sa.String(255), primary_key=True),
        sa.Column("added_at", TZ, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sync_pending")
    op.drop_table("sync_cursors")
