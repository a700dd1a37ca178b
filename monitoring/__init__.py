"""Monitoring: Prometheus metrics and structlog logging. Importable by every package; imports none of them."""

from .logs import configure_logging, redact_text, redactor, register_secret
from .metrics import (ATTEMPTS, BROWSER_RESTARTS, LOCATOR_FALLBACKS, OUTCOMES, PAGE_CRASHES, REGISTRY, SESSIONS,
                      STEP_DURATION, TRANSACTION_DURATION, TRANSACTIONS, serve_metrics)

__all__ = [
    # metrics
    "REGISTRY",
    "TRANSACTIONS",
    "ATTEMPTS",
    "OUTCOMES",
    "serve_metrics",
    "STEP_DURATION",
    "TRANSACTION_DURATION",
    "LOCATOR_FALLBACKS",
    "SESSIONS",
    "BROWSER_RESTARTS",
    "PAGE_CRASHES",
    # logging
    "configure_logging",
    "register_secret",
    "redact_text",
    "redactor",
]
