"""The Celery task: thin. Decode the ids, call :func:`execute_many`, let the acknowledgement follow.

A message that is not a list of transaction ids of this worker's ledger is rejected without
requeueing, so RabbitMQ dead-letters it (``autoclerk.dead``) instead of a worker retrying it forever
or, worse, applying another ledger's ids to its own. A message whose ids could not be claimed because the
ledger stayed unreachable goes back to the queue (acknowledging it would leave its cases queued with
nobody to publish them again).
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.exceptions import Reject

from ..ledger import LEDGER_UNREACHABLE
from .execution import execute_many
from .runtime import current_runtime

TASK_NAME = "autoclerk.process_transactions"


def decode_ids(body: Any) -> list[int]:
    """The transaction ids of a message body, or ``ValueError`` when it is not one of ours."""
    if isinstance(body, list) and body and len(body) <= 10_000 and all(
            isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in body):
        return body
    raise ValueError("not a list of transaction ids")


def register_tasks(app: Celery) -> None:
    """Register ``autoclerk.process_transactions`` on ``app``."""

    @app.task(name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
    def process_transactions(self: Any, ids: Any = None, ledger_id: Any = None, *args: Any, **kwargs: Any) -> int:
        try:
            tx_ids = decode_ids(ids)
        except ValueError:
            raise Reject("not a list of transaction ids", requeue=False) from None
        runtime = current_runtime()
        if args or kwargs or ledger_id != runtime.ledger.ledger_id:
            raise Reject("a message for another ledger, or with unexpected arguments", requeue=False)
        try:
            return len(execute_many(runtime, tx_ids))
        except LEDGER_UNREACHABLE:
            raise Reject("the ledger is unreachable; the message goes back to the queue", requeue=True) from None
