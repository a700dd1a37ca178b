"""Recurring work: schedules that Celery beat reads from the ledger, the files dropped in watched folders
(by SHA-256, so the same file is never handed off twice) and leases (the one running beat holds ``beat``).

Revision ID: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("workflow", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("cron", sa.String(128)),
        sa.Column("every_s", sa.Float),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_run_at", sa.Float),
        sa.Column("last_outcome", sa.Text),
        sa.Column("run_requested_at", sa.Float),
    )
    op.create_table(
        "dropped_files",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("schedule", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("batch_id", sa.String(32)),
        sa.Column("processed_path", sa.Text),
        sa.Column("results_path", sa.Text),
        sa.Column("dropped_at", sa.Float, nullable=False),
        sa.UniqueConstraint("schedule", "sha256", name="uq_dropped_files_schedule_sha256"),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("owner", sa.String(160), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in ("leases", "dropped_files", "schedules"):
        op.drop_table(table)
