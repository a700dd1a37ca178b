"""The account tables: ``users`` (roles, argon2 password hashes), ``api_tokens`` and ``web_sessions``
(only SHA-256 digests of the tokens); ``teams``, the workflows each owns (``team_workflows``) and the
limits of users to teams or named workflows (``user_limits``, migration ``0013_permissions``).

They are in the ledger's database, made by its Alembic migrations (``0005_handoff_service``), and on the
ledger's :data:`~orchestrator.ledger.schema.metadata`, so one comparison checks every table against the
migrated database.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Integer, String, Table, Text

from ..ledger.schema import metadata

ROLES = ("caseworker", "operator", "author")
"""What a user may do: hand work off and deal with exceptions, operate batches, publish workflows."""

users = Table(
    "users",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("roles", String(64), nullable=False),
    Column("password_hash", Text),
    Column("active", Integer, nullable=False, server_default="1"),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("username", String(64), nullable=False, index=True),
    Column("created_at", Float, nullable=False),
    Column("last_used_at", Float),
    Column("revoked", Integer, nullable=False, server_default="0"),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("username", String(64), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("flash", Text),  # the one-time message the session's next page shows, then forgets
)

teams = Table(
    "teams",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("created_at", Float, nullable=False),
)

team_workflows = Table(
    "team_workflows",
    metadata,
    Column("team", String(64), primary_key=True),
    Column("workflow", String(64), primary_key=True),
)

user_limits = Table(
    "user_limits",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("kind", String(8), primary_key=True),  # "team" or "workflow"
    Column("name", String(64), primary_key=True),
)
"""A user with no row here is not limited (their roles reach every workflow); one with rows reaches only the
workflows named, and those of the teams named."""
