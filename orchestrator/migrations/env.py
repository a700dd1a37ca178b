"""Alembic environment: migrations run on the connection the ledger hands over (never from a URL in a file)."""

from __future__ import annotations

from alembic import context
connection = context.config.attributes["connection"]
context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")

with context.begin_transaction():  # orchestrator.ledger.migrate holds the migration lock around this
    context.run_migrations()
