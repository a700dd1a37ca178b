"""Every case's result and every batch's reconciliation.

- ``transactions.error_detail``: for authors (the step, the locator, the exception), beside
  ``error_message``, which is what a caseworker reads.
- ``batches.rows_read``, ``batches.accepted`` and ``batches.input_sha256``: what a hand-off read, what it
  queued, and the SHA-256 of the file it read. Earlier batches get the counts their ledger rows give
  (their file's digest is unknown).
- ``batch_rejections.kind``: why a row was not queued, as a category (the reason text names the row's
  own values). Earlier rows get the category their reason's wording gives.
- ``ix_transactions_batch_id``: a batch's cases in hand-off order, a page at a time (the batch page, the
  results export), read on this index instead of sorting the whole batch for every page.
- ``workers.resolves``: the secret, env and system names a worker can resolve (JSON; names, never values),
  so a hand-off through a broker is checked against the live workers.

Revision ID: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("transactions") as transactions:
        transactions.add_column(sa.Column("error_detail", sa.Text))
    with op.batch_alter_table("batches") as batches:
        batches.add_column(sa.Column("rows_read", sa.Integer))
        batches.add_column(sa.Column("accepted", sa.Integer))
        batches.add_column(sa.Column("input_sha256", sa.String(64)))
    op.create_index("ix_transactions_batch_id", "transactions", ["batch_id", "id"])
    with op.batch_alter_table("workers") as workers:
        workers.add_column(sa.Column("resolves", sa.Text))
    with op.batch_alter_table("batch_rejections") as rejections:
        rejections.add_column(sa.Column("kind", sa.String(24), nullable=False, server_default="invalid"))
    op.execute("UPDATE batch_rejections SET kind = CASE "
               "WHEN field = 'row' THEN 'unreadable' "
               "WHEN reason LIKE 'duplicate case reference %' THEN 'duplicate' "
               "WHEN reason LIKE '% conflicts with the case already handed off %' THEN 'conflict' "
               "WHEN reason LIKE '% was already handed off in batch %' THEN 'already_handed_off' "
               "ELSE 'invalid' END")
    op.execute("UPDATE batches SET accepted = (SELECT COUNT(*) FROM transactions t WHERE t.batch_id = batches.id)")
    op.execute("UPDATE batches SET rows_read = accepted + rows_rejected")


def downgrade() -> None:
    op.drop_index("ix_transactions_batch_id", table_name="transactions")
    with op.batch_alter_table("workers") as workers:
        workers.drop_column("resolves")
    with op.batch_alter_table("batch_rejections") as rejections:
        rejections.drop_column("kind")
    with op.batch_alter_table("batches") as batches:
        batches.drop_column("input_sha256")
        batches.drop_column("accepted")
        batches.drop_column("rows_read")
    with op.batch_alter_table("transactions") as transactions:
        transactions.drop_column("error_detail")
