"""When a bot last waited for a session slot of a system (``system_sessions.waited_at``): a bot that asks for
a slot for the first time lets the bots already waiting have a freed slot first.

Revision ID: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("system_sessions") as batch:
        batch.add_column(sa.Column("waited_at", sa.Float))


def downgrade() -> None:
    with op.batch_alter_table("system_sessions") as batch:
        batch.drop_column("waited_at")
