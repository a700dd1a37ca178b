"""The Celery application, configured for the embedded transport or for RabbitMQ.

Reliability settings (see shared/reference/reliability.md §3): late acknowledgement after the ledger
commit, requeue when a worker is lost, prefetch of one per pool thread, JSON only, persistent
messages with publisher confirms on RabbitMQ. The message carries only a transaction id: the case lives
in the ledger, and secrets never travel through the broker.
"""

from __future__ import annotations

from celery import Celery

from .settings import Settings

QUEUE = "autoclerk.transactions"
TASK_NAME = "autoclerk.process_transaction"


def make_celery(settings: Settings) -> Celery:
    """Build a Celery app for ``settings.broker_url`` and register the transaction task on it."""
    app = Celery("autoclerk", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_default_queue=QUEUE,
        task_default_delivery_mode="persistent",
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_send_task_events=False,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        enable_utc=True,
    )
    if settings.embedded:
        # kombu's virtual transports sleep between empty polls; keep the hand-off latency low.
        app.conf.broker_transport_options = {"polling_interval": 0.01}
    else:
        app.conf.broker_transport_options = {"confirm_publish": True}
        app.conf.broker_heartbeat = 30
    from .tasks import register_tasks

    register_tasks(app)
    return app
