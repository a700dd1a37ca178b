"""Monitoring: Prometheus metrics and structlog logging. Importable by every package; imports none of them."""

from .logs import configure_logging, redact_text, redactor, register_secret
from .metrics import (ATTEMPTS, BOT_SLOTS, BOTS_BUSY, BROWSER_RESTARTS, HEALS, LOCATOR_FALLBACKS, OUTCOMES, PAGE_CRASHES, REGISTRY,
                      RETRIES, SESSIONS, STEP_DURATION, STEP_RETRIES, TARGET_WAIT, TRANSACTION_DURATION, TRANSACTIONS,
                      VERIFICATION_RESULTS, VERIFICATIONS, disable_metrics,
                      metrics_enabled, serve_metrics)

__all__ = [
    # metrics
    "REGISTRY",
    "TRANSACTIONS",
    "ATTEMPTS",
    "OUTCOMES",
    "VERIFICATIONS",
    "VERIFICATION_RESULTS",
    "serve_metrics",
    "metrics_enabled",
    "disable_metrics",
    "STEP_DURATION",
    "TRANSACTION_DURATION",
    "TARGET_WAIT",
    "BOTS_BUSY",
    "BOT_SLOTS",
    "RETRIES",
    "STEP_RETRIES",
    "LOCATOR_FALLBACKS",
    "HEALS",
    "SESSIONS",
    "BROWSER_RESTARTS",
    "PAGE_CRASHES",
    # logging
    "configure_logging",
    "register_secret",
    "redact_text",
    "redactor",
]
