"""Self-healing locators: each step's recorded element fingerprint (``step_fingerprints``) and every heal,
made or proposed, with its case and its approval (``heals``).

Revision ID: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "step_fingerprints",
        sa.Column("digest", sa.String(32), primary_key=True),
        sa.Column("step", sa.String(300), primary_key=True),
        sa.Column("workflow", sa.String(64), nullable=False),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("recorded_at", sa.Float, nullable=False),
    )
    op.create_table(
        "heals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("workflow", sa.String(64), nullable=False),
        sa.Column("digest", sa.String(32), nullable=False),
        sa.Column("step", sa.String(300), nullable=False),
        sa.Column("verb", sa.String(32), nullable=False),
        sa.Column("case_ref", sa.String(128), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("old_locator", sa.Text, nullable=False),
        sa.Column("new_locator", sa.Text, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("runner_up", sa.Float, nullable=False),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("candidate", sa.Text, nullable=False),
        sa.Column("screenshot", sa.Text),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("approved_by", sa.String(64)),
        sa.Column("approved_at", sa.Float),
        sa.Column("reason", sa.Text),
        sa.Column("publish_number", sa.Integer),
    )
    op.create_index("ix_heals_workflow_at", "heals", ["workflow", "at"])


def downgrade() -> None:
    op.drop_index("ix_heals_workflow_at", table_name="heals")
    op.drop_table("heals")
    op.drop_table("step_fingerprints")
