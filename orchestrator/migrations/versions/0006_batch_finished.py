"""A batch's life: ``finished`` (every case terminal) with the time it happened, beside active, paused and
cancelled. Batches that already hold only terminal cases are marked finished, at their last case's time.

Revision ID: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batches") as batches:
        batches.add_column(sa.Column("finished_at", sa.Float))
    op.execute(
        "UPDATE batches SET state = 'finished', finished_at = COALESCE("
        "(SELECT MAX(t.updated_at) FROM transactions t WHERE t.batch_id = batches.id), batches.created_at) "
        "WHERE state = 'active' AND intake <> 'receiving' AND NOT EXISTS ("
        "SELECT 1 FROM transactions t WHERE t.batch_id = batches.id "
        "AND t.state IN ('queued', 'in_progress', 'retry_scheduled', 'paused'))")


def downgrade() -> None:
    op.execute("UPDATE batches SET state = 'active' WHERE state = 'finished'")
    with op.batch_alter_table("batches") as batches:
        batches.drop_column("finished_at")
