"""structlog set-up: JSON lines in production, readable console lines in development, secrets redacted.

Secrets are registered with :func:`register_secret` the moment they are read; the redactor, the last
processor before rendering, replaces every registered value wherever it appears and drops fields whose
names say they hold credentials.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import MutableMapping
from typing import Any

import structlog

_SENSITIVE_KEY = re.compile(r"pass(word|wd)?|secret|token|authorization|cookie", re.IGNORECASE)
_secrets: set[str] = set()
_lock = threading.Lock()
MASK = "****"


def register_secret(value: str) -> None:
    """Make ``value`` unprintable from here on (values shorter than 4 characters are not registered)."""
    if value and len(value) >= 4:
        with _lock:
            _secrets.add(value)


def redact_text(text: str) -> str:
    """``text`` with every registered secret replaced by ``****``."""
    with _lock:
        values = sorted(_secrets, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: MASK if _SENSITIVE_KEY.search(str(k)) else _redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact(v) for v in value]
    if isinstance(value, BaseException):
        return redact_text(f"{type(value).__name__}: {value}")
    return value


def redactor(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask credential-named fields and every registered secret value."""
    return {k: MASK if _SENSITIVE_KEY.search(k) else _redact(v) for k, v in event_dict.items()}


def configure_logging(*, json: bool = False, level: str = "WARNING", stream: Any = None) -> None:
    """Configure structlog and the standard library's root logger (for Celery's own lines) once per process.

    Args:
        json: JSON lines (production) instead of console lines (development).
        level: the lowest level written.
        stream: where lines go (standard error by default).
    """
    stream = stream or sys.stderr
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.WARNING
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redactor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.addFilter(_StdlibRedactFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)


class _StdlibRedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact_text(record.getMessage())
        record.args = None
        return True
