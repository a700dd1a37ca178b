"""The operators' commands: ``autoclerk batches list|show|reconcile|pause|resume|cancel|requeue``.

They act on the ledger (the source of truth); with a broker (``--broker`` or ``AUTOCLERK_BROKER_URL``)
resumed and re-queued transactions are published at once, otherwise the next sweep of a worker or of
``autoclerk run`` publishes them.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click

from ..errors import EXIT_UNFINISHED, LedgerError, UsageError
from ..ledger import STATES
from .options import cli_user, existing_batch, open_ledger, settings_from_flags


def _act(ledger_url: str | None, broker_url: str | None, batch_id: str, action: str, **kwargs: Any) -> Any:
    """Apply ``action`` through :func:`orchestrator.queue.operate_batch`, publishing at once when a broker is set."""
    from ..queue import RELEASES_WORK, Publisher, make_celery, operate_batch

    ledger = open_ledger(ledger_url)
    try:
        publisher = None
        if action in RELEASES_WORK:
            settings = settings_from_flags(broker_url=broker_url, ledger_url=ledger.url)
            if not settings.embedded:
                publisher = Publisher(make_celery(settings), ledger, settings.ids_per_message)
        return operate_batch(ledger, batch_id, action, by=cli_user(), origin="cli", publisher=publisher, **kwargs)
    except LedgerError as exc:
        raise UsageError(str(exc)) from None
    finally:
        ledger.close()


def _published(done: Any) -> str:
    if done.not_published is not None:
        return f"not published now ({done.not_published}); the next sweep publishes them"
    if done.published is None:
        return "the next sweep publishes them (a worker, or 'autoclerk run' with the same file)"
    return f"{done.published} published"


@click.group()
def batches() -> None:
    """List batches, show one's cases or its reconciliation, and pause, resume, cancel or re-queue one."""


_LEDGER = click.option("--ledger", "ledger_url", help="SQLAlchemy URL of the ledger (default from settings).")
_BROKER = click.option("--broker", "broker_url", help="Publish at once through this broker (amqp://…).")


@batches.command("list")
@_LEDGER
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per batch, one per line.")
def list_batches(ledger_url: str | None, limit: int, as_json: bool) -> None:
    """The newest batches with their counts by state."""
    ledger = open_ledger(ledger_url)
    try:
        rows = ledger.batches.recent(limit)
    finally:
        ledger.close()
    for row in rows:
        counts = {state: n for state, n in row["counts"].items() if n}
        if as_json:
            click.echo(json.dumps({"id": row["id"], "workflow": row["workflow"], "state": row["state"],
                                   "finished_at": row["finished_at"], "priority": row["priority"],
                                   "created_at": row["created_at"], "counts": counts}))
            continue
        created = dt.datetime.fromtimestamp(row["created_at"]).strftime("%Y-%m-%d %H:%M")
        shown = ", ".join(f"{state} {n}" for state, n in counts.items()) or "empty"
        click.echo(f"{row['id']}  {created}  {row['workflow']:<24} {row['state']:<9} {shown}")


@batches.command()
@click.argument("batch_id")
@_LEDGER
@click.option("--state", type=click.Choice(STATES), help="Only the cases in this state.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per case (the API's keys), then one summary object as the last line.")
def show(batch_id: str, ledger_url: str | None, state: str | None, as_json: bool) -> None:
    """The batch's counts, then each case: its state, attempts, and its result or why it has none."""
    from ..queue import case_results

    ledger = open_ledger(ledger_url)
    try:
        batch = existing_batch(ledger, batch_id)
        counts = ledger.reports.counts(batch_id)
        summary = {"batch_id": batch_id, "workflow": batch["workflow"], "state": batch["state"],
                   "finished_at": batch["finished_at"], "total": sum(counts.values()),
                   "counts": counts, "shown": 0}
        if not as_json:
            shown = ", ".join(f"{s.replace('_', ' ')} {n:,}" for s, n in counts.items() if n) or "no cases"
            click.echo(f"batch {batch_id}: {batch['workflow']}, {batch['state']}; {summary['total']:,} case(s): {shown}")
        for result in case_results(ledger, batch_id, state=state):
            summary["shown"] += 1
            if as_json:
                click.echo(json.dumps(result, ensure_ascii=False))
                continue
            outcome = result["result_ref"] or result["error_message"] or ""
            click.echo(f"  {result['case_ref']:<20} {result['state'].replace('_', ' '):<18} "
                       f"attempts {result['attempts']:<3} {outcome}")
            if result["error_detail"] and result["state"] != "done":
                click.echo(f"  {'':<20} detail: {result['error_detail']}")
    finally:
        ledger.close()
    if as_json:
        click.echo(json.dumps(summary))
    elif state and not summary["shown"]:
        click.echo(f"  no case is {state.replace('_', ' ')}")


@batches.command()
@click.argument("batch_id")
@_LEDGER
@click.option("--json", "as_json", is_flag=True, help="The report as one JSON object.")
def reconcile(batch_id: str, ledger_url: str | None, as_json: bool) -> None:
    """Account for every row of the batch's file: rows read = accepted + rejected, and accepted = each
    outcome + still in progress. Names the file's SHA-256, who handed it off and when, and the workflow
    version. Exits 1 when the sums do not hold."""
    from ..queue import reconcile as reconcile_batch

    ledger = open_ledger(ledger_url)
    try:
        report = reconcile_batch(ledger, batch_id)
    finally:
        ledger.close()
    if report is None:
        raise UsageError(f"there is no batch {batch_id} (see 'autoclerk batches list')")
    if as_json:
        click.echo(json.dumps(report.as_json()))
    else:
        for line in report.lines():
            click.echo(line)
    if not report.balanced:
        raise click.exceptions.Exit(EXIT_UNFINISHED)


@batches.command()
@click.argument("batch_id")
@_LEDGER
def pause(batch_id: str, ledger_url: str | None) -> None:
    """Hold the batch's waiting transactions (running ones finish)."""
    done = _act(ledger_url, None, batch_id, "pause")
    click.echo(f"batch {batch_id}: paused, {done.count} transaction(s) held")


@batches.command()
@click.argument("batch_id")
@_LEDGER
@_BROKER
def resume(batch_id: str, ledger_url: str | None, broker_url: str | None) -> None:
    """Release a paused batch."""
    done = _act(ledger_url, broker_url, batch_id, "resume")
    click.echo(f"batch {batch_id}: resumed, {done.count} transaction(s) released; {_published(done)}")


@batches.command()
@click.argument("batch_id")
@_LEDGER
def cancel(batch_id: str, ledger_url: str | None) -> None:
    """Cancel the batch's waiting transactions (running ones finish)."""
    done = _act(ledger_url, None, batch_id, "cancel")
    click.echo(f"batch {batch_id}: cancelled, {done.count} transaction(s) will not run")


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
    done = _act(ledger_url, broker_url, batch_id, "retry-failed", states=states, attempts=attempts)
    click.echo(f"batch {batch_id}: {done.count} transaction(s) re-queued; {_published(done)}")
