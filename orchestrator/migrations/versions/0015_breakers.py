"""A circuit breaker per target system (``breakers``), shared by every worker: closed, open or half-open, the
consecutive failures that showed the system down, when the open period ends, and the lease of the one worker
probing it while half-open.

Revision ID: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "breakers",
        sa.Column("system", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("opened_at", sa.Float),
        sa.Column("probe_at", sa.Float),
        sa.Column("prober", sa.String(160)),
        sa.Column("probe_until", sa.Float),
        sa.Column("reason", sa.Text),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("breakers")
