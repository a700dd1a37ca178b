"""Running the hand-off service: ``autoclerk serve``.

With the embedded broker (the default) the service also runs the bots, in this process, on the same
Celery task path as a RabbitMQ worker; with ``--broker amqp://…`` it only hands work off and the
``autoclerk worker`` processes run it. The socket is bound before uvicorn starts, so ``--port 0`` works;
the address is printed on the first line of standard output (``listening on http://HOST:PORT``).
"""

from __future__ import annotations

import socket
import time
from contextlib import nullcontext

import uvicorn

from bots import find_chromium

from ..ledger import Ledger
from ..queue import Publisher, Runtime, Sweeper, declare_queues, embedded_worker, make_celery, set_runtime
from ..settings import Settings
from .app import create_app
from .service import HandoffService
from .sso import check_sso_settings

READY_PREFIX = "listening on "


def serve(settings: Settings) -> None:
    """Serve until interrupted (SIGINT or SIGTERM end it gracefully).

    Raises:
        OSError: the address cannot be bound.
        LedgerError, BrokerError, BrowserNotFoundError: a service it needs is missing.
        ConfigurationError: the single sign-on role mapping names an unknown role.
    """
    check_sso_settings(settings)
    if settings.embedded and settings.bot == "chromium":
        find_chromium(settings.chromium_path)
    ledger = Ledger(settings.ledger_url)
    app = make_celery(settings)
    if not settings.embedded:
        declare_queues(app)
    publisher = Publisher(app, ledger, settings.ids_per_message)
    runtime = Runtime(settings, ledger)
    started = time.time()
    heartbeat = (lambda: ledger.heartbeats.beat(runtime.owner, "embedded", settings.concurrency, started)) \
        if settings.embedded else None
    sweeper = Sweeper(publisher, settings.sweep_interval_s, heartbeat=heartbeat)
    sock = socket.socket(socket.AF_INET6 if ":" in settings.serve_host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.serve_host, settings.serve_port))
    sock.listen(512)
    host, port = sock.getsockname()[:2]
    try:
        with embedded_worker(app, settings.concurrency) if settings.embedded else nullcontext():
            set_runtime(runtime)
            if heartbeat is not None:
                heartbeat()
            sweeper.start()
            print(f"{READY_PREFIX}http://{host}:{port}", flush=True)
            config = uvicorn.Config(create_app(HandoffService(settings, ledger, publisher)), log_level="warning",
                                    access_log=False, timeout_keep_alive=30, timeout_graceful_shutdown=30)
            uvicorn.Server(config).run(sockets=[sock])
    finally:
        sweeper.stop()
        set_runtime(None)
        runtime.close()
        ledger.close()
        sock.close()
