"""the clock: every customer already in the store is due once, so their next time is known

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25

An install that upgrades has people whose trial or card is already counting down but who have
no due row yet; without one the clock would not see them until their next event. One row per
known customer, due at once, makes the first clock run evaluate each of them and write their
real next due time (rows of the same person are folded into one as it goes).
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        sa.text(
            "INSERT INTO clock_due (customer_id, due_at, reason, subject, evaluated_at, updated_at)"
            " SELECT DISTINCT customer_id, 0, 'backfill', NULL, 0, CURRENT_TIMESTAMP"
            " FROM objects WHERE customer_id IS NOT NULL"
            " AND customer_id NOT IN (SELECT customer_id FROM clock_due)"
        )
    )


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM clock_due WHERE reason = 'backfill'"))
