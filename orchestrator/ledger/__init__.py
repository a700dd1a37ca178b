"""The durable ledger: one row per case (SQLite or PostgreSQL through SQLAlchemy, migrated with Alembic)."""

from .core import Claim, Ledger, Outcome
from .schema import ACTIVE, BATCH_STATES, STATES, TERMINAL, WAITING

__all__ = ["Ledger", "Claim", "Outcome", "ACTIVE", "WAITING", "TERMINAL", "STATES", "BATCH_STATES"]
