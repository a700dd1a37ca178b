"""The ledger's identity: a random id carried by every broker message, so a worker never applies a
message meant for another ledger that shares the broker.

Revision ID: 0003
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "ledger_info",
        sa.Column("key", sa.String(32), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.bulk_insert(table, [{"key": "ledger_id", "value": uuid.uuid4().hex}])


def downgrade() -> None:
    op.drop_table("ledger_info")
