"""events, the projection, cases and their timeline

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("type", sa.String(100), nullable=False, index=True),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("livemode", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("api_version", sa.String(32)),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("customer_id", sa.String(255), index=True),
        sa.Column("received_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("processed_at", TZ),
    )
    op.create_table(
        "objects",
        sa.Column("object_type", sa.String(32), primary_key=True),
        sa.Column("object_id", sa.String(255), primary_key=True),
        sa.Column("customer_id", sa.String(255), index=True),
        sa.Column("email", sa.String(320), index=True),
        sa.Column("link_id", sa.String(255), index=True),
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("partial", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(300), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("kind", sa.String(40), nullable=False, index=True),
        sa.Column("classification", sa.String(40), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("customer_id", sa.String(255), nullable=False, index=True),
        sa.Column("finding", sa.Text, nullable=False),
        sa.Column("handoff", sa.Text, nullable=False),
        sa.Column("opened_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("resolved_at", TZ),
        sa.Column("status_by", sa.String(120)),
        sa.Column("status_note", sa.Text),
    )
    op.create_table(
        "case_entries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "case_id", sa.Integer, sa.ForeignKey("cases.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("at", TZ, nullable=False),
        sa.Column("actor", sa.String(120), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("event_id", sa.String(255)),
    )
    op.create_index("ix_case_entries_case_at", "case_entries", ["case_id", "id"])


def downgrade() -> None:
    op.drop_table("case_entries")
    op.drop_table("cases")
    op.drop_table("objects")
    op.drop_table("events")
