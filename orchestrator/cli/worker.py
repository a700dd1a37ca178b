"""``autoclerk worker``: one worker process consuming from RabbitMQ (the wiring is :func:`orchestrator.queue.run_worker`)."""

from __future__ import annotations

from typing import Any

import click

from .options import engine_options, settings_from_flags, systems_option


@click.command()
@engine_options
@systems_option
@click.option("--metrics-port", type=click.IntRange(0, 65535), help="Serve /metrics on 127.0.0.1:PORT.")
def worker(**flags: Any) -> None:
    """Consume transactions from RabbitMQ and run them in bots (Ctrl-C stops it gracefully)."""
    from ..queue import run_worker

    run_worker(settings_from_flags(**flags))
