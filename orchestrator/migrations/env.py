"""Alembic environment: migrations run on the connection the ledger hands over (never from a URL in a file)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

connection = context.config.attributes["connection"]
context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")

with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        # Workers on several hosts may open a new ledger at once: one of them migrates, the others wait.
        connection.execute(text("SELECT pg_advisory_xact_lock(72619)"))
    context.run_migrations()
