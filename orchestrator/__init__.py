"""The queue core: Celery over RabbitMQ (or the embedded transport), the durable ledger, hand-off and the CLI.

The only package that imports Celery, pika or the database.
"""

from .errors import BrokerError, LedgerError, OrchestratorError, StaleAttempt, UsageError
from .execution import execute_many
from .handoff import Receipt, hand_off, wait_for_batch
from .publisher import Publisher, Sweeper
from .intake import AcceptedCase, Rejection, read_cases
from .ledger import ACTIVE, STATES, TERMINAL, WAITING, Claim, Ledger, Outcome
from .runtime import Runtime
from .settings import EMBEDDED_BROKER, Settings, load_settings
from .summary import Summary

__all__ = [
    # settings
    "Settings",
    "load_settings",
    "EMBEDDED_BROKER",
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
    "StaleAttempt",
    "BrokerError",
    "UsageError",
]
