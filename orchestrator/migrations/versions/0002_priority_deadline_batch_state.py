"""Priorities, deadlines, the workflow version on each row, and batch states (paused, cancelled).

Revision ID: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("transactions") as table:
        table.add_column(sa.Column("version", sa.Integer, nullable=False, server_default="1"))
        table.add_column(sa.Column("priority", sa.Integer, nullable=False, server_default="0"))
        table.add_column(sa.Column("deadline", sa.Float))
    op.create_index("ix_transactions_outbox", "transactions", ["published", "state", "priority"])
    with op.batch_alter_table("batches") as table:
        table.add_column(sa.Column("state", sa.String(16), nullable=False, server_default="active"))
        table.add_column(sa.Column("priority", sa.Integer, nullable=False, server_default="0"))
        table.add_column(sa.Column("deadline", sa.Float))


def downgrade() -> None:
    op.drop_index("ix_transactions_outbox", "transactions")
    with op.batch_alter_table("batches") as table:
        for column in ("deadline", "priority", "state"):
            table.drop_column(column)
    with op.batch_alter_table("transactions") as table:
        for column in ("deadline", "priority", "version"):
            table.drop_column(column)
