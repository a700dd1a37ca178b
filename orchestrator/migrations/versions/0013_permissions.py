"""Permissions by business area: teams own workflows (``teams``, ``team_workflows``), and a user's roles can
be limited to teams or to named workflows (``user_limits``; a user without rows is not limited).

Revision ID: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "team_workflows",
        sa.Column("team", sa.String(64), primary_key=True),
        sa.Column("workflow", sa.String(64), primary_key=True),
    )
    op.create_table(
        "user_limits",
        sa.Column("username", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(8), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
    )


def downgrade() -> None:
    for table in ("user_limits", "team_workflows", "teams"):
        op.drop_table(table)
