"""The Celery task: thin. Decode the id, call :func:`execute`, publish a retry when it asks for one."""

from __future__ import annotations

from typing import Any

from celery import Celery

from .celery_app import TASK_NAME
from .execution import execute
from .runtime import current_runtime


def register_tasks(app: Celery) -> None:
    """Register ``autoclerk.process_transaction`` on ``app``."""

    @app.task(name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
    def process_transaction(self: Any, tx_id: int) -> str:
        if not isinstance(tx_id, int) or isinstance(tx_id, bool):
            return "rejected"  # a foreign message: nothing in the ledger to do
        runtime = current_runtime()
        decision = execute(runtime, tx_id)
        if decision.retry_in_s is not None:
            self.apply_async((tx_id,), countdown=decision.retry_in_s)
            runtime.ledger.mark_published([tx_id])
        return decision.outcome
