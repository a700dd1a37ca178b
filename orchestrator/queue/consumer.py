"""The worker's Celery consumer, hardened against messages that are not ours.

Celery acknowledges a message it cannot decode (so it vanishes); a message that decodes but does not
have the shape of a task message (for instance ``{"schema_version": 99}`` with a task header) raises
inside the task strategy and stops the worker ("Unrecoverable error"; redelivered, it stops the next
worker too); and one whose keyword arguments are not a mapping fails as a task and is acknowledged. This consumer rejects both without requeueing, so RabbitMQ dead-letters them to
``autoclerk.dead`` for inspection and the worker keeps consuming. It logs the message's id and content
type, never its body.

A lost connection or a channel the broker closed (a delivery held past RabbitMQ's acknowledgement
timeout) is logged as one line; attempts in flight run on (see ``celery_app``).
"""

from __future__ import annotations

import warnings
from typing import Any

import structlog
from celery.exceptions import CPendingDeprecationWarning
from celery.utils.functional import noop
from celery.worker.consumer.consumer import Consumer
from vine import promise

log = structlog.get_logger(__name__)


class GuardedConsumer(Consumer):  # type: ignore[misc]
    """Celery's consumer; messages it cannot take are dead-lettered instead of dropped or fatal."""

    def on_connection_error_after_connected(self, exc: Exception) -> None:
        from celery.worker.state import active_requests

        log.warning("broker connection lost; reconnecting", reason=str(exc)[:300], attempts_in_flight=len(active_requests))
        with warnings.catch_warnings():  # Celery's notice that version 6 will cancel such attempts by default
            warnings.simplefilter("ignore", CPendingDeprecationWarning)
            super().on_connection_error_after_connected(exc)

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        _refuse(self, message, f"undecodable ({type(exc).__name__})")

    def create_task_handler(self, promise: Any = promise) -> Any:
        handler = super().create_task_handler(promise)

        def on_task_received(message: Any) -> Any:
            # Celery's task message (protocol 2) is (args, kwargs, embed); anything else is not ours. Kombu
            # keeps the decoded body, so the strategy does not decode it again.
            try:
                body = message.decode()
            except Exception as exc:  # noqa: BLE001 - undecodable, or a content type we do not accept
                _refuse(self, message, f"undecodable ({type(exc).__name__})")
                return noop()
            if not (isinstance(body, (list, tuple)) and len(body) == 3 and isinstance(body[0], (list, tuple))
                    and isinstance(body[1], dict) and isinstance(body[2], dict)):
                _refuse(self, message, "not a task message (its body is not args, kwargs, embed)")
                return noop()
            try:
                return handler(message)
            except Exception as exc:  # noqa: BLE001 - a malformed message must not stop the worker
                _refuse(self, message, f"not a task message ({type(exc).__name__})")
                return noop()

        return on_task_received


def _refuse(consumer: Consumer, message: Any, why: str) -> None:
    headers = message.headers if isinstance(getattr(message, "headers", None), dict) else {}
    log.warning("message refused and dead-lettered", reason=why, message_id=str(headers.get("id", ""))[:64],
                content_type=str(message.content_type)[:64])
    message.reject_log_error(consumer.app.log.get_default_logger(), consumer.connection_errors)
