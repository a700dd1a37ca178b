"""The orchestrator: the queue core, the durable ledger, the hand-off service and the command line.

The only package that imports Celery, pika or the database. Its rooms, and what each may import:

- :mod:`.ledger`: the durable ledger (SQLite or PostgreSQL, Alembic migrations); imports none of the others.
- :mod:`.accounts`: users, roles, API tokens and sign-in sessions, on the ledger's database.
- :mod:`.queue`: hand-off, publishing, workers, execution, batch operations and progress; never imports
  :mod:`.web` or :mod:`.cli`.
- :mod:`.web`: the hand-off service's pages and JSON API; never imports :mod:`.cli`.
- :mod:`.cli`: the ``autoclerk`` command; imports :mod:`.web` only to start it (``autoclerk serve``).

``settings``, ``errors`` and ``deadlines`` (the clock of service levels: deadlines, working days,
maintenance windows) are shared by all of them. ``docs/architecture.md`` draws the whole.
"""

from .errors import AuditChainBroken, BrokerError, ConfigurationError, LedgerError, OrchestratorError, StaleAttempt, UsageError
from .ledger import ACTIVE, STATES, TERMINAL, WAITING, Claim, Ledger, Outcome
from .queue import (AcceptedCase, Publisher, Receipt, Rejection, Runtime, Summary, Sweeper, execute_many, hand_off,
                    read_cases, wait_for_batch)
from .settings import EMBEDDED_BROKER, Settings, SystemLimit, load_settings

__all__ = [
    # settings
    "Settings",
    "load_settings",
    "EMBEDDED_BROKER",
    "SystemLimit",
    # ledger
    "Ledger",
    "Claim",
    "Outcome",
    "WAITING",
    "STATES",
    "ACTIVE",
    "TERMINAL",
    # hand-off
    "hand_off",
    "wait_for_batch",
    "Publisher",
    "Sweeper",
    "Receipt",
    "read_cases",
    "AcceptedCase",
    "Rejection",
    "Summary",
    # execution
    "Runtime",
    "execute_many",
    # errors
    "OrchestratorError",
    "LedgerError",
    "AuditChainBroken",
    "StaleAttempt",
    "BrokerError",
    "UsageError",
    "ConfigurationError",
]
