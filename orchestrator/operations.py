"""The operators' commands: ``autoclerk batches list|pause|resume|cancel|requeue``.

They act on the ledger (the source of truth); with a broker (``--broker`` or ``AUTOCLERK_BROKER_URL``)
resumed and re-queued transactions are published at once, otherwise the next sweep of a worker or of
``autoclerk run`` publishes them.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click

from .errors import BrokerError, LedgerError, UsageError


def _ledger(ledger_url: str | None) -> Any:
    from .ledger import Ledger
    from .settings import load_settings

    return Ledger(load_settings(ledger_url=ledger_url).ledger_url)


def _publish_due(ledger: Any, batch_id: str, broker_url: str | None) -> str:
    from .celery_app import make_celery
    from .publisher import Publisher
    from .settings import load_settings

    settings = load_settings(broker_url=broker_url, ledger_url=ledger.url)
    if settings.embedded:
        return "the next sweep publishes them (a worker, or 'autoclerk run' with the same file)"
    try:
        count = Publisher(make_celery(settings), ledger, settings.ids_per_message).sweep(batch_id)
    except BrokerError as exc:
        return f"not published now ({exc}); the next sweep publishes them"
    return f"{count} published"


@click.group()
def batches() -> None:
    """List batches, and pause, resume, cancel or re-queue one."""


_LEDGER = click.option("--ledger", "ledger_url", help="SQLAlchemy URL of the ledger (default from settings).")
_BROKER = click.option("--broker", "broker_url", help="Publish at once through this broker (amqp://…).")


@batches.command("list")
@_LEDGER
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per batch, one per line.")
def list_batches(ledger_url: str | None, limit: int, as_json: bool) -> None:
    """The newest batches with their counts by state."""
    ledger = _ledger(ledger_url)
    try:
        rows = ledger.recent_batches(limit)
    finally:
        ledger.close()
    for row in rows:
        counts = {state: n for state, n in row["counts"].items() if n}
        if as_json:
            click.echo(json.dumps({"id": row["id"], "workflow": row["workflow"], "state": row["state"],
                                   "priority": row["priority"], "created_at": row["created_at"], "counts": counts}))
            continue
        created = dt.datetime.fromtimestamp(row["created_at"]).strftime("%Y-%m-%d %H:%M")
        shown = ", ".join(f"{state} {n}" for state, n in counts.items()) or "empty"
        click.echo(f"{row['id']}  {created}  {row['workflow']:<24} {row['state']:<9} {shown}")


def _act(ledger_url: str | None, batch_id: str, action: str, **kwargs: Any) -> tuple[Any, int]:
    ledger = _ledger(ledger_url)
    try:
        return ledger, getattr(ledger, action)(batch_id, **kwargs)
    except LedgerError as exc:
        ledger.close()
        raise UsageError(str(exc)) from None


@batches.command()
@click.argument("batch_id")
@_LEDGER
def pause(batch_id: str, ledger_url: str | None) -> None:
    """Hold the batch's waiting transactions (running ones finish)."""
    ledger, count = _act(ledger_url, batch_id, "pause_batch")
    ledger.close()
    click.echo(f"batch {batch_id}: paused, {count} transaction(s) held")


@batches.command()
@click.argument("batch_id")
@_LEDGER
@_BROKER
def resume(batch_id: str, ledger_url: str | None, broker_url: str | None) -> None:
    """Release a paused batch."""
    ledger, count = _act(ledger_url, batch_id, "resume_batch")
    try:
        click.echo(f"batch {batch_id}: resumed, {count} transaction(s) released; {_publish_due(ledger, batch_id, broker_url)}")
    finally:
        ledger.close()


@batches.command()
@click.argument("batch_id")
@_LEDGER
def cancel(batch_id: str, ledger_url: str | None) -> None:
    """Cancel the batch's waiting transactions (running ones finish)."""
    ledger, count = _act(ledger_url, batch_id, "cancel_batch")
    ledger.close()
    click.echo(f"batch {batch_id}: cancelled, {count} transaction(s) will not run")


@batches.command()
@click.argument("batch_id")
@_LEDGER
@_BROKER
@click.option("--cancelled", "include_cancelled", is_flag=True, help="Re-queue cancelled transactions too.")
@click.option("--attempts", type=click.IntRange(1, 20), default=3, show_default=True,
              help="Attempts each re-queued transaction gets.")
def requeue(batch_id: str, ledger_url: str | None, broker_url: str | None, include_cancelled: bool,
            attempts: int) -> None:
    """Give the batch's failed (dead-lettered) transactions more attempts."""
    states = ("failed", "cancelled") if include_cancelled else ("failed",)
    ledger, count = _act(ledger_url, batch_id, "requeue", states=states, extra_attempts=attempts)
    try:
        click.echo(f"batch {batch_id}: {count} transaction(s) re-queued; {_publish_due(ledger, batch_id, broker_url)}")
    finally:
        ledger.close()
