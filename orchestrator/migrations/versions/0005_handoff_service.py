"""The hand-off service: users, API tokens, web sessions, published workflows, who handed a batch off,
every refused row of a hand-off, caseworkers' actions on exceptions, and worker heartbeats.

Revision ID: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batches") as table:
        table.add_column(sa.Column("created_by", sa.String(64)))
        table.add_column(sa.Column("intake", sa.String(16), nullable=False, server_default="complete"))
        table.add_column(sa.Column("rows_rejected", sa.Integer, nullable=False, server_default="0"))
    op.create_index("ix_batches_created_by", "batches", ["created_by", "created_at"])
    with op.batch_alter_table("transactions") as table:
        table.add_column(sa.Column("resolution", sa.String(16)))
    op.create_table(
        "users",
        sa.Column("username", sa.String(64), primary_key=True),
        sa.Column("roles", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.Text),
        sa.Column("active", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "api_tokens",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, index=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_used_at", sa.Float),
        sa.Column("revoked", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "web_sessions",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, index=True),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_table(
        "published_workflows",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("digest", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("published_by", sa.String(64), nullable=False),
        sa.Column("published_at", sa.Float, nullable=False),
    )
    op.create_table(
        "batch_rejections",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("batch_id", sa.String(32), nullable=False),
        sa.Column("row", sa.Integer, nullable=False),
        sa.Column("field", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_batch_rejections_batch", "batch_rejections", ["batch_id", "row"])
    op.create_table(
        "case_actions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("transaction_id", sa.Integer, nullable=False, index=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("action", sa.String(24), nullable=False),
        sa.Column("note", sa.Text),
    )
    op.create_table(
        "workers",
        sa.Column("owner", sa.String(160), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("concurrency", sa.Integer, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("last_seen", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in ("workers", "case_actions", "batch_rejections", "published_workflows", "web_sessions", "api_tokens",
                  "users"):
        op.drop_table(table)
    with op.batch_alter_table("transactions") as transactions:
        transactions.drop_column("resolution")
    op.drop_index("ix_batches_created_by", "batches")
    with op.batch_alter_table("batches") as batches:
        for column in ("rows_rejected", "intake", "created_by"):
            batches.drop_column(column)
