"""The durable ledger: one row per case (SQLite or PostgreSQL through SQLAlchemy, migrated with Alembic).

:class:`Ledger` opens it and holds its parts, one per concept (see :mod:`.core`).
"""

from .audit import AuditHead, AuditTrail
from .backup import backup_sqlite
from .batches import Batches
from .breakers import Breaker, Breakers
from .budgets import SystemBudgets
from .cases import Cases
from .core import LEDGER_UNREACHABLE, Ledger
from .counters import Counters, bump, bump_many
from .dropped import DroppedFiles
from .heals import Heals
from .heartbeats import Heartbeats
from .outbox import Outbox
from .reports import Reports
from .schedules import Schedules
from .retention import ERASED, PrunedChunk, Retention
from .schema import ACTIVE, BATCH_STATES, HELD, STATES, TERMINAL, WAITING
from .transactions import Claim, Outcome, Transactions
from .workflows import WorkflowStore

__all__ = [
    "Ledger",
    "LEDGER_UNREACHABLE",
    # its parts
    "Transactions",
    "Outbox",
    "Batches",
    "Cases",
    "Reports",
    "Counters",
    "Retention",
    "WorkflowStore",
    "Heartbeats",
    "SystemBudgets",
    "Breakers",
    "AuditTrail",
    "Schedules",
    "DroppedFiles",
    # keeping counts in a caller's database transaction
    "bump",
    "bump_many",
    "Heals",
    # what they take and give
    "Claim",
    "Outcome",
    "Breaker",
    "AuditHead",
    "PrunedChunk",
    # states
    "ACTIVE",
    "WAITING",
    "HELD",
    "TERMINAL",
    "STATES",
    "BATCH_STATES",
    # backup
    "backup_sqlite",
    "ERASED",
]
