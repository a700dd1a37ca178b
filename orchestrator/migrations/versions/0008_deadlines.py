"""Deadlines: a partial index on the deadlines of unfinished cases, for the at-risk and breached figures.

Finished cases leave the index, so counting what is due soon reads only what is due soon, however many
millions of finished cases the ledger holds. The deadline columns themselves came with 0002.

Revision ID: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UNFINISHED_DEADLINE = "deadline IS NOT NULL AND state IN ('queued', 'in_progress', 'retry_scheduled', 'paused')"


def upgrade() -> None:
    op.create_index("ix_transactions_deadline", "transactions", ["deadline"],
                    sqlite_where=sa.text(UNFINISHED_DEADLINE), postgresql_where=sa.text(UNFINISHED_DEADLINE))


def downgrade() -> None:
    op.drop_index("ix_transactions_deadline", table_name="transactions")
