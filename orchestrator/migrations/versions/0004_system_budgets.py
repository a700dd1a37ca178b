"""Budgets per target system, shared by every worker: a token bucket for the rate and session slots; and
an index that finds abandoned leases without scanning the table.

Revision ID: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "system_rate",
        sa.Column("system", sa.String(64), primary_key=True),
        sa.Column("tokens", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "system_sessions",
        sa.Column("system", sa.String(64), primary_key=True),
        sa.Column("slot", sa.Integer, primary_key=True),
        sa.Column("holder", sa.String(160)),
        sa.Column("until", sa.Float),
    )


    # Only rows in progress are in it: small, cheap to keep up, and enough to find abandoned leases.
    held = sa.text("state = 'in_progress'")
    op.create_index("ix_transactions_lease", "transactions", ["lease_until"], sqlite_where=held, postgresql_where=held)


def downgrade() -> None:
    op.drop_index("ix_transactions_lease", "transactions")
    op.drop_table("system_sessions")
    op.drop_table("system_rate")
