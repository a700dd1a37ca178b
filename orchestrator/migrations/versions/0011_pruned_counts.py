"""Retention: what ``autoclerk ledger prune`` moved to an archive stays counted.

- ``pruned_cases``: cases taken out of the ledger, per batch, workflow and state (every count by state adds
  them in, so batch totals, reconciliations and the target stay true).
- ``pruned_rejections``: refused rows of a wholly pruned batch, per batch and kind (its reconciliation adds
  them in).

Revision ID: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pruned_cases",
        sa.Column("batch_id", sa.String(32), primary_key=True),
        sa.Column("workflow", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(24), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.create_table(
        "pruned_rejections",
        sa.Column("batch_id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(24), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pruned_rejections")
    op.drop_table("pruned_cases")
