"""Workflow versions and the audit trail.

- ``workflow_publishes``: every publish of a workflow name, numbered 1, 2, 3… per name, with who, when,
  the file, the digest, the author's ``version:`` and, for a rollback, its reason and the number rolled
  back to. Each workflow already published becomes its publish number 1.
- ``audit_log``: the append-only, hash-chained audit trail (sequence, when, who, action, object, origin,
  a JSON detail, the previous record's hash and the record's own SHA-256).

Revision ID: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workflow_publishes",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("digest", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("published_by", sa.String(64), nullable=False),
        sa.Column("published_at", sa.Float, nullable=False),
        sa.Column("file", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("rolled_back_from", sa.Integer),
    )
    op.execute("INSERT INTO workflow_publishes (name, number, digest, version, published_by, published_at, file) "
               "SELECT name, 1, digest, version, published_by, published_at, '' FROM published_workflows")
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(48), nullable=False),
        sa.Column("object_type", sa.String(24), nullable=False),
        sa.Column("object_id", sa.String(160), nullable=False),
        sa.Column("origin", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_table("workflow_publishes")
