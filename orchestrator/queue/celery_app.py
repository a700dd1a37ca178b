"""The Celery application, configured for the embedded transport or for RabbitMQ.

Reliability settings (docs/reliability.md): late acknowledgement after the ledger
commit, requeue when a worker is lost, JSON only, persistent messages with publisher confirms. On
RabbitMQ the work queue is a durable **quorum queue** with an explicit delivery limit whose dead
letters go, at least once, to ``autoclerk.dead``: a message that keeps killing workers, or that is not
ours, ends there instead of looping. A message carries transaction ids only (several per message):
the case lives in the ledger, and secrets never travel through the broker.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu import Exchange, Queue

from ..errors import BrokerError
from ..settings import Settings
from .tasks import register_tasks

QUEUE = "autoclerk.transactions"
DEAD_LETTER_EXCHANGE = "autoclerk.dlx"
DEAD_LETTER_QUEUE = "autoclerk.dead"


def work_queue(settings: Settings) -> Queue:
    """The work queue: quorum, delivery-limited, dead-lettering at least once (RabbitMQ only)."""
    exchange = Exchange(QUEUE, type="direct", durable=True)
    if settings.embedded:
        return Queue(QUEUE, exchange, routing_key=QUEUE)
    return Queue(QUEUE, exchange, routing_key=QUEUE, durable=True, queue_arguments={
        "x-queue-type": "quorum",
        "x-delivery-limit": settings.delivery_limit,
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
        "x-dead-letter-routing-key": DEAD_LETTER_QUEUE,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    })


def dead_letter_queue() -> Queue:
    """Where RabbitMQ puts messages that could not be processed at all (a quorum queue too)."""
    return Queue(DEAD_LETTER_QUEUE, Exchange(DEAD_LETTER_EXCHANGE, type="direct", durable=True),
                 routing_key=DEAD_LETTER_QUEUE, durable=True, queue_arguments={"x-queue-type": "quorum"})


def declare_queues(app: Celery) -> None:
    """Declare the dead-letter queue and the work queue on the broker (idempotent).

    Raises:
        BrokerError: the queue exists with other arguments (made by an older version), or the broker
            cannot be reached.
    """
    if app.conf.broker_url.startswith("memory://"):
        return
    from amqp.exceptions import PreconditionFailed

    try:
        with app.connection_for_write() as connection:
            channel = connection.default_channel
            dead_letter_queue().bind(channel).declare()
            app.conf.task_queues[0].bind(channel).declare()
    except PreconditionFailed as exc:
        raise BrokerError(f"a queue on the broker has other arguments than this version declares ({exc.reply_text}); "
                          f"drain it, then delete it with 'rabbitmqctl delete_queue {QUEUE}'") from None
    except OSError as exc:
        raise BrokerError(f"the broker at {app.conf.broker_url} cannot be reached ({exc})") from None


def make_celery(settings: Settings) -> Celery:
    """Build a Celery app for ``settings.broker_url`` and register the transaction task on it."""
    app = Celery("autoclerk", broker=settings.broker_url, set_as_current=False)
    queue = work_queue(settings)
    conf: dict[str, Any] = dict(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_queues=[queue],
        task_default_queue=QUEUE,
        task_default_exchange=QUEUE,
        task_default_routing_key=QUEUE,
        task_create_missing_queues=False,
        task_default_delivery_mode="persistent",
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_send_task_events=False,
        worker_enable_remote_control=False,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        # On a lost connection or channel, attempts in flight run on: a thread pool cannot stop them
        # (Celery's cancel raises NotImplementedError there), and the ledger's lease fences their writes,
        # while RabbitMQ redelivers the message and the redelivery skips what a live attempt holds.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_consumer="orchestrator.queue.consumer:GuardedConsumer",
        enable_utc=True,
        timezone=settings.timezone,  # what schedules' cron expressions run in (celery.beat)
    )
    if settings.embedded:
        # kombu's virtual transports sleep between empty polls; keep the hand-off latency low.
        conf["broker_transport_options"] = {"polling_interval": 0.01}
    else:
        conf["broker_transport_options"] = {"confirm_publish": True}
        conf["broker_heartbeat"] = 30
        # A channel RabbitMQ closes (a delivery held past consumer_timeout: PRECONDITION_FAILED) is
        # reconnected like a lost connection; without this the worker stops with "Unrecoverable error"
        # (celery/celery#6760), and every worker that picks the message up next stops the same way.
        conf["broker_channel_error_retry"] = True
        # Quorum queues have no global QoS: Celery detects them and uses per-consumer prefetch.
        conf["worker_detect_quorum_queues"] = True
    app.conf.update(conf)
    register_tasks(app)
    return app
