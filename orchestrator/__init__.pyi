"""The names :mod:`orchestrator` exports, for type checkers; ``__init__.py`` loads each on first use from this list."""

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
