"""Verified transactions: each case's verification outcome (``verification``: ``verified``, ``unverified``,
``verify_failed``, or ``pending`` while a submitted case waits to be verified before it ends) and when a
delayed verification is due (``verify_due_at``, on a partial index the sweep reads).

Revision ID: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

VERIFY_DUE = "verify_due_at IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("transactions") as batch:
        batch.add_column(sa.Column("verification", sa.String(16)))
        batch.add_column(sa.Column("verify_due_at", sa.Float))
    op.create_index("ix_transactions_verify_due", "transactions", ["verify_due_at"],
                    sqlite_where=sa.text(VERIFY_DUE), postgresql_where=sa.text(VERIFY_DUE))


def downgrade() -> None:
    op.drop_index("ix_transactions_verify_due", table_name="transactions")
    with op.batch_alter_table("transactions") as batch:
        batch.drop_column("verify_due_at")
        batch.drop_column("verification")
