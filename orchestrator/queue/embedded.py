"""The embedded worker: a real Celery worker (thread pool) in this process, on the in-process transport.

This is the same task path as with RabbitMQ (publish → consume → task → ack), with no server to run.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery import Celery
from celery.worker import WorkController


class _ReadyWorkController(WorkController):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.ready = threading.Event()
        super().__init__(*args, **kwargs)

    def on_consumer_ready(self, consumer: Any) -> None:
        self.ready.set()


@contextmanager
def embedded_worker(app: Celery, concurrency: int) -> Iterator[WorkController]:
    """Run a Celery worker with a pool of ``concurrency`` threads in a background thread.

    Raises:
        RuntimeError: the worker did not start within 60 seconds.
    """
    worker = _ReadyWorkController(
        app=app,
        pool_cls="threads",
        concurrency=concurrency,
        loglevel="WARNING",
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
        hostname=f"embedded@{threading.get_ident()}",
    )
    thread = threading.Thread(target=worker.start, name="autoclerk-embedded-worker", daemon=True)
    thread.start()
    if not worker.ready.wait(60):
        raise RuntimeError("the embedded Celery worker did not start within 60 s")
    try:
        yield worker
    finally:
        worker.stop(in_sighandler=False)
        thread.join(timeout=30)
