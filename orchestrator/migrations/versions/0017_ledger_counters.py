"""Screens fast at any size: counts by state kept as the ledger changes, and the indexes the pages' lists read.

- ``ledger_counters``: how many cases each batch (``""``: the whole ledger) holds in each state, how many
  open exceptions, verified done cases (``verified``) and failed verifications (``verify_failed``), per
  workflow, spread over shards summed on read; filled here from the cases already in the ledger.
- ``ix_transactions_batch_state`` gains the id: a batch's cases of one state, a page at a time in hand-off
  order, on PostgreSQL too (SQLite's index already ended with the row id).
- ``ix_batches_created_at``: the newest batches, read a page at a time.
- ``ix_transactions_open_exceptions``: open exceptions (handed back, not yet dealt with), oldest change first.
- ``ix_transactions_held``: cases held for a missing setting, by workflow.

Revision ID: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

# Repeated word for word from orchestrator.ledger.schema (a migration keeps the text it was written with).
OPEN_EXCEPTION = "state = 'business_exception' AND resolution IS NULL"
HELD_CASE = "state = 'paused' AND error_class = 'ConfigurationMissing'"


def upgrade() -> None:
    op.create_table(
        "ledger_counters",
        sa.Column("batch_id", sa.String(32), primary_key=True),
        sa.Column("workflow", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("shard", sa.Integer, primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.execute("INSERT INTO ledger_counters (batch_id, workflow, name, shard, count) "
               "SELECT batch_id, workflow, state, 0, COUNT(*) FROM transactions GROUP BY batch_id, workflow, state")
    op.execute("INSERT INTO ledger_counters (batch_id, workflow, name, shard, count) "
               "SELECT batch_id, workflow, 'open_exception', 0, COUNT(*) FROM transactions "
               f"WHERE {OPEN_EXCEPTION} GROUP BY batch_id, workflow")
    # the counts toward the target (0016 added the column): verified done cases, and failed verifications
    for name, state in (("verified", "done"), ("verify_failed", "business_exception")):
        op.execute("INSERT INTO ledger_counters (batch_id, workflow, name, shard, count) "
                   f"SELECT batch_id, workflow, '{name}', 0, COUNT(*) FROM transactions "
                   f"WHERE state = '{state}' AND verification = '{name}' GROUP BY batch_id, workflow")
    op.execute("INSERT INTO ledger_counters (batch_id, workflow, name, shard, count) "
               "SELECT '', workflow, name, 0, SUM(count) FROM ledger_counters GROUP BY workflow, name")
    op.drop_index("ix_transactions_batch_state", table_name="transactions")
    op.create_index("ix_transactions_batch_state", "transactions", ["batch_id", "state", "id"])
    op.create_index("ix_batches_created_at", "batches", ["created_at"])
    op.create_index("ix_transactions_open_exceptions", "transactions", ["updated_at"],
                    sqlite_where=sa.text(OPEN_EXCEPTION), postgresql_where=sa.text(OPEN_EXCEPTION))
    op.create_index("ix_transactions_held", "transactions", ["workflow"],
                    sqlite_where=sa.text(HELD_CASE), postgresql_where=sa.text(HELD_CASE))


def downgrade() -> None:
    op.drop_index("ix_transactions_held", table_name="transactions")
    op.drop_index("ix_transactions_open_exceptions", table_name="transactions")
    op.drop_index("ix_batches_created_at", table_name="batches")
    op.drop_index("ix_transactions_batch_state", table_name="transactions")
    op.create_index("ix_transactions_batch_state", "transactions", ["batch_id", "state"])
    op.drop_table("ledger_counters")
