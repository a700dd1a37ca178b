"""The beat process: ``autoclerk beat`` runs Celery beat over the ledger's schedules (a deployment runs
exactly one; the ledger's ``beat`` lease refuses a second). With ``--embedded`` it also runs the bots, in
an embedded Celery worker in the same process, for small installs with no RabbitMQ.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from contextlib import nullcontext
from functools import partial
from types import FrameType

from celery.beat import Service

from bots import find_chromium
from monitoring import configure_logging
from workflows import LoadedWorkflow

from ..errors import UsageError
from ..ledger import Ledger
from ..settings import Settings
from .celery_app import declare_queues, make_celery
from .embedded import embedded_worker
from .preflight import check_configuration, check_workers
from .publisher import Publisher, Sweeper
from .runtime import Runtime, set_runtime
from .scheduler import LEASE_TTL_S, TICK_S, LedgerScheduler, ScheduleFiring
from .schedules import BEAT_LEASE

READY = "beat started"
"""The line ``autoclerk beat`` prints on standard output once it ticks (tests and supervisors wait for it)."""


def run_beat(settings: Settings, *, embedded: bool) -> None:
    """Run Celery beat over the ledger's schedules until stopped (SIGINT or SIGTERM end it gracefully).

    Args:
        embedded: also run an embedded worker here (only on the embedded broker, where it is required:
            nothing else would run the work).

    Raises:
        UsageError: ``--embedded`` with a broker, or the embedded broker without ``--embedded``; or another
            beat already runs on this ledger.
        BrowserNotFoundError, LedgerError, BrokerError: something it needs is missing.
    """
    if settings.embedded and not embedded:
        raise UsageError("on the embedded broker nothing else runs the work: run 'autoclerk beat --embedded' "
                         "(beat and the bots in one process), or pass --broker amqp://… to use RabbitMQ workers")
    if embedded and not settings.embedded:
        raise UsageError("--embedded runs the bots in this process on the embedded broker; with --broker "
                         "amqp://… run 'autoclerk worker' processes instead")
    configure_logging(json=settings.log_json, level=settings.log_level)
    if embedded and settings.bot == "chromium":
        find_chromium(settings.chromium_path)
    ledger = Ledger(settings.ledger_url)
    owner = f"beat:{socket.gethostname()}:{os.getpid()}"
    holder = ledger.schedules.hold_lease(BEAT_LEASE, owner, LEASE_TTL_S)
    if holder is not None:
        ledger.close()
        raise UsageError(f"another beat ({holder}) already runs on this ledger; a deployment runs exactly one "
                         f"(if it was killed, its lease ends within {LEASE_TTL_S:g} s)")
    app = make_celery(settings)
    publisher = Publisher(app, ledger, settings.ids_per_message)
    runtime = Runtime(settings, ledger)
    started = time.time()
    heartbeat = (lambda: ledger.heartbeats.beat(runtime.owner, "embedded", settings.concurrency, started)) \
        if embedded else None
    sweeper = Sweeper(publisher, settings.sweep_interval_s, heartbeat=heartbeat)
    def preflight(loaded: LoadedWorkflow) -> None:
        """What 'autoclerk run' checks before it queues anything, at each firing: here, when the bots run in
        this process; otherwise against the live workers' heartbeats."""
        if settings.embedded:
            if settings.bot == "chromium":
                check_configuration(loaded, settings)
        else:
            check_workers(loaded, ledger.heartbeats.workers(), what="Nothing was handed off")

    service = Service(app, max_interval=TICK_S, scheduler_cls=partial(
        LedgerScheduler, ledger=ledger, firing=ScheduleFiring(ledger, publisher, preflight, settings.tz), owner=owner))
    signal.signal(signal.SIGTERM, _exit)
    try:
        if not settings.embedded:
            declare_queues(app)
        with embedded_worker(app, settings.concurrency) if embedded else nullcontext():
            set_runtime(runtime)
            if heartbeat is not None:
                heartbeat()
            sweeper.start()
            _ = service.scheduler  # reads the schedules before saying it started
            print(f"{READY} ({len(service.scheduler.schedule)} schedule(s), time zone {settings.timezone})", flush=True)
            service.start()
    finally:
        sweeper.stop()
        set_runtime(None)
        runtime.close()
        ledger.schedules.release_lease(BEAT_LEASE, owner)
        ledger.close()


def _exit(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)  # beat's loop stops on SystemExit, closing the scheduler (which gives the lease up)
