"""Flash messages live in the sign-in session: ``web_sessions.flash`` holds the one-time message the next
page shows ("The batch was handed off"), so it is never in an address, shows once, and only to the person
whose action it reports.

Revision ID: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("web_sessions") as batch:
        batch.add_column(sa.Column("flash", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("web_sessions") as batch:
        batch.drop_column("flash")
