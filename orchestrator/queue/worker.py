"""A worker process: ``autoclerk worker`` consumes transactions from RabbitMQ and runs them in bots.

One process holds one :class:`Runtime` (the ledger, the bot engine, the parsed workflows), a Celery worker
on a thread pool, and a sweeper that publishes what is due and tells the ledger the worker is alive.
Everything a worker needs is checked before it consumes anything: a missing browser is refused at once
and never spends an attempt of a case.
"""

from __future__ import annotations

import os
import socket
import time

from bots import find_chromium
from monitoring import configure_logging, disable_metrics

from ..errors import UsageError
from ..ledger import Ledger
from ..settings import Settings
from .celery_app import declare_queues, make_celery
from .gauges import serve_process_metrics
from .preflight import resolvable_names
from .publisher import Publisher, Sweeper
from .runtime import Runtime, set_runtime


def run_worker(settings: Settings) -> None:
    """Consume and run transactions until stopped (SIGINT or SIGTERM end it gracefully).

    Raises:
        UsageError: the settings name no broker (a worker consumes from RabbitMQ).
        BrowserNotFoundError, LedgerError, BrokerError: something the worker needs is missing.
    """
    if settings.embedded:
        raise UsageError("a worker needs a broker to consume from: pass --broker amqp://… or set AUTOCLERK_BROKER_URL")
    configure_logging(json=settings.log_json, level=settings.log_level)
    if settings.bot == "chromium":
        find_chromium(settings.chromium_path)
    runtime = Runtime(settings, Ledger(settings.ledger_url))
    set_runtime(runtime)
    if not settings.metrics:
        disable_metrics()
    elif settings.metrics_port is not None:
        serve_process_metrics(settings, runtime.ledger, settings.concurrency)
    app = make_celery(settings)
    declare_queues(app)
    started = time.time()
    sweeper = Sweeper(Publisher(app, runtime.ledger, settings.ids_per_message), settings.sweep_interval_s,
                      heartbeat=lambda: runtime.ledger.heartbeats.beat(runtime.owner, "worker", settings.concurrency, started,
                                                                       resolvable_names(settings)))
    sweeper.start()
    try:
        app.Worker(hostname=f"autoclerk-{os.getpid()}@{socket.gethostname()}", pool_cls="threads",
                   concurrency=settings.concurrency, loglevel=settings.log_level, quiet=True,
                   without_mingle=True, without_gossip=True).start()
    finally:
        sweeper.stop()
        runtime.close()
