"""The queue core: Celery over RabbitMQ (or the embedded transport), the durable ledger, hand-off and the CLI.

The only package that imports Celery, pika or the database.
"""

from .errors import BrokerError, LedgerError, OrchestratorError, StaleAttempt, UsageError
from .execution import Decision, execute
from .handoff import Publisher, Receipt, hand_off, wait_for_batch
from .intake import AcceptedCase, Rejection, read_cases
from .ledger import ACTIVE, STATES, TERMINAL, Claim, Ledger
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
    "STATES",
    "ACTIVE",
    "TERMINAL",
    # hand-off
    "hand_off",
    "wait_for_batch",
    "Publisher",
    "Receipt",
    "read_cases",
    "AcceptedCase",
    "Rejection",
    "Summary",
    # execution
    "Runtime",
    "execute",
    "Decision",
    # errors
    "OrchestratorError",
    "LedgerError",
    "StaleAttempt",
    "BrokerError",
    "UsageError",
]
