"""Monitoring: Prometheus metrics and structlog logging. Importable by every package; imports none of them."""

from .logs import configure_logging, redact_text, redactor, register_secret
from .metrics import ATTEMPTS, LOCATOR_FALLBACKS, OUTCOMES, REGISTRY, STEP_DURATION, TRANSACTIONS, serve_metrics

__all__ = [
    # metrics
    "REGISTRY",
    "TRANSACTIONS",
    "ATTEMPTS",
    "OUTCOMES",
    "serve_metrics",
    "STEP_DURATION",
    "LOCATOR_FALLBACKS",
    # logging
    "configure_logging",
    "register_secret",
    "redact_text",
    "redactor",
]
