"""Getting transaction ids onto the broker: confirmed, several per message, and swept when something is due.

On RabbitMQ a publish is a window of persistent messages whose confirms are awaited together (not one
round trip per message: waiting for each confirm caps a publisher at about a thousand messages a
second; docs/operations.md has the measurements). The messages are Celery's own task messages, made
by Celery, so any Celery worker reads them. Ids leave the outbox only after every confirm came back.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence

import amqp
import structlog
from celery import Celery
from kombu.exceptions import OperationalError as KombuOperationalError
from kombu.serialization import dumps

from ..errors import BrokerError, LedgerError
from ..ledger import Ledger
from .celery_app import QUEUE, declare_queues
from .tasks import TASK_NAME

log = structlog.get_logger(__name__)

SPREAD = 64
"""A publish is cut into at least this many messages (when it has that many ids), so a small batch
still spreads over every worker thread instead of queueing behind one message."""

WINDOW = 512
"""Unconfirmed messages in flight before the publisher waits for confirms."""

CONFIRM_TIMEOUT_S = 30.0


def message_size(count: int, most: int) -> int:
    """How many ids each message of a publish of ``count`` ids carries."""
    return max(1, min(most, count // SPREAD))


class Publisher:
    """Publishes transaction ids to the broker, several per message, and takes them out of the outbox."""

    def __init__(self, app: Celery, ledger: Ledger, ids_per_message: int = 250) -> None:
        self.app, self.ledger, self.ids_per_message = app, ledger, ids_per_message
        self._declared = False
        self._lock = threading.Lock()

    def publish(self, ids: Iterable[int]) -> None:
        """Publish the ids, wait for the broker to confirm them, then mark them published.

        Raises:
            BrokerError: the broker cannot be reached or refused a message; the ids stay in the outbox
                for the sweep.
        """
        ids = list(ids)
        if not ids:
            return
        size = message_size(len(ids), self.ids_per_message)
        chunks = [ids[start:start + size] for start in range(0, len(ids), size)]
        with self._lock:
            try:
                if self.app.conf.broker_url.startswith("memory://"):
                    with self.app.producer_or_acquire() as producer:
                        for chunk in chunks:
                            self.app.send_task(TASK_NAME, args=(chunk, self.ledger.ledger_id), producer=producer)
                else:
                    if not self._declared:
                        declare_queues(self.app)
                        self._declared = True
                    self._publish_confirmed(chunks)
            except (KombuOperationalError, OSError, amqp.exceptions.AMQPError) as exc:
                raise BrokerError(f"the broker at {self.app.conf.broker_url} did not take the messages ({exc})") from None
        self.ledger.outbox.mark_published(ids)

    def _publish_confirmed(self, chunks: Sequence[list[int]]) -> None:
        info = self.app.connection_for_write().info()
        connection = amqp.Connection(host=f"{info['hostname']}:{info['port']}", userid=info["userid"],
                                     password=info["password"], virtual_host=info["virtual_host"],
                                     ssl=info["ssl"], connect_timeout=10, confirm_publish=False)
        connection.connect()
        try:
            channel = connection.channel()
            channel.confirm_select()
            unconfirmed: set[int] = set()
            refused: list[int] = []

            def confirmed(delivery_tag: int, multiple: bool, bucket: list[int] | None = None) -> None:
                tags = {t for t in unconfirmed if t <= delivery_tag} if multiple else {delivery_tag}
                unconfirmed.difference_update(tags)
                if bucket is not None:
                    bucket.extend(tags)

            channel.events["basic_ack"].add(confirmed)
            channel.events["basic_nack"].add(lambda tag, multiple: confirmed(tag, multiple, refused))
            for tag, chunk in enumerate(chunks, start=1):
                channel.basic_publish(self._message(chunk), exchange=QUEUE, routing_key=QUEUE)
                unconfirmed.add(tag)
                while len(unconfirmed) >= WINDOW:
                    connection.drain_events(timeout=CONFIRM_TIMEOUT_S)
            while unconfirmed:
                connection.drain_events(timeout=CONFIRM_TIMEOUT_S)
            if refused:
                raise BrokerError(f"the broker refused {len(refused)} message(s) (nack); they stay in the outbox")
        finally:
            try:
                connection.close()
            except (OSError, amqp.exceptions.AMQPError):
                connection.collect()  # the connection broke: release it without a closing handshake

    def _message(self, ids: list[int]) -> amqp.Message:
        task_id = str(uuid.uuid4())
        task = self.app.amqp.create_task_message(task_id, TASK_NAME, (ids, self.ledger.ledger_id), {},
                                                 argsrepr=f"({len(ids)} transaction ids)", kwargsrepr="{}")
        content_type, encoding, body = dumps(task.body, serializer="json")
        return amqp.Message(body, content_type=content_type, content_encoding=encoding, delivery_mode=2,
                            application_headers=task.headers, **task.properties)

    def sweep(self, batch_id: str | None = None) -> int:
        """Publish what is due: the outbox, retries whose time has come, rows whose lease ran out."""
        due = self.ledger.outbox.due(batch_id)
        self.publish(due)
        return len(due)


class Sweeper:
    """A worker's background sweep: every ``interval_s`` (with jitter, so workers do not sweep in step) it
    marks finished the batches whose every case is terminal, and publishes due retries, the outbox and
    abandoned leases of every batch. A broker outage only delays it. ``heartbeat``, when given, runs first
    on every round (the worker tells the ledger it is alive)."""

    def __init__(self, publisher: Publisher, interval_s: float, heartbeat: Callable[[], None] | None = None) -> None:
        self.publisher, self.interval_s, self.heartbeat = publisher, interval_s, heartbeat
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="autoclerk-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s * random.uniform(0.75, 1.25)):
            if self.heartbeat is not None:
                try:
                    self.heartbeat()
                except Exception as exc:  # noqa: BLE001 - a heartbeat is best effort; the sweep goes on
                    log.warning("heartbeat not recorded", error=type(exc).__name__)
            try:
                self.publisher.ledger.batches.settle()
            except Exception as exc:  # noqa: BLE001 - settled again on the next round; the sweep goes on
                log.warning("batches not settled; trying again later", error=type(exc).__name__)
            try:
                swept = self.publisher.sweep()
            except (BrokerError, LedgerError) as exc:
                log.warning("sweep failed; trying again later", error=str(exc))
                continue
            if swept:
                log.info("swept", published=swept)
