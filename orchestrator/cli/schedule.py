"""``autoclerk schedule add|list|remove|run-now`` (recurring work kept in the ledger) and ``autoclerk beat``
(Celery beat over those schedules; a deployment runs exactly one). See :mod:`orchestrator.queue.scheduler`.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import click

from .options import cli_user, engine_options, ledger_option, open_ledger, settings_from_flags, systems_option


@click.group()
def schedule() -> None:
    """Recurring work: hand a file, or each file dropped into a folder, off to a workflow on a timetable."""


@schedule.command("add")
@click.argument("name")
@click.option("--workflow", required=True, help="The published workflow the cases go to.")
@click.option("--folder", type=click.Path(file_okay=False, path_type=Path),
              help="Watch DIR/inbox/: each CSV, JSONL or XLSX file dropped there becomes a batch.")
@click.option("--file", "file", type=click.Path(dir_okay=False, path_type=Path),
              help="Hand this file off as a new batch at each firing.")
@click.option("--cron", help='A cron expression in AUTOCLERK_TIMEZONE, e.g. "0 7 * * MON-FRI".')
@click.option("--every", help="An interval: a number and s, m, h or d (e.g. 30s).")
@ledger_option
def add(name: str, workflow: str, folder: Path | None, file: Path | None, cron: str | None, every: str | None,
        ledger_url: str | None) -> None:
    """Add schedule NAME; the running beat fires it from its next tick, with no restart."""
    from ..queue import add_schedule, describe_timing

    ledger = open_ledger(ledger_url)
    try:
        added = add_schedule(ledger, name, workflow, folder=folder, file=file, cron=cron, every=every, by=cli_user())
    finally:
        ledger.close()
    where = f"each file dropped into {added['path']}/inbox/" if added["kind"] == "folder" else added["path"]
    click.echo(f"schedule {name}: {where} to {workflow}, {describe_timing(added)}")


@schedule.command("list")
@ledger_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per schedule, one per line.")
def list_schedules(ledger_url: str | None, as_json: bool) -> None:
    """Every schedule, with when it last fired and what came of it."""
    from ..queue import describe_timing

    ledger = open_ledger(ledger_url)
    try:
        rows = ledger.schedules.all()
    finally:
        ledger.close()
    if not rows and not as_json:
        click.echo("no schedules (add one with 'autoclerk schedule add')", err=True)
    for row in rows:
        if as_json:
            click.echo(json.dumps({key: row[key] for key in (
                "name", "workflow", "kind", "path", "cron", "every_s", "created_by", "created_at", "last_run_at",
                "last_outcome")}, ensure_ascii=False))
            continue
        last = "never fired" if row["last_run_at"] is None else (
            f"last {dt.datetime.fromtimestamp(row['last_run_at']).strftime('%Y-%m-%d %H:%M:%S')}: "
            f"{row['last_outcome'] or 'nothing new to hand off'}")
        click.echo(f"{row['name']:<20} {row['workflow']:<24} {row['kind']:<6} {row['path']}  {describe_timing(row)}  {last}")


@schedule.command("remove")
@click.argument("name")
@ledger_option
def remove(name: str, ledger_url: str | None) -> None:
    """Remove schedule NAME; the running beat stops firing it at its next tick."""
    from ..queue import remove_schedule

    ledger = open_ledger(ledger_url)
    try:
        remove_schedule(ledger, name, by=cli_user())
    finally:
        ledger.close()
    click.echo(f"schedule {name}: removed")


@schedule.command("run-now")
@click.argument("name")
@ledger_option
def run_now(name: str, ledger_url: str | None) -> None:
    """Ask the running beat to fire schedule NAME now (within a second); 'schedule list' shows the outcome."""
    from ..queue import run_schedule_now

    ledger = open_ledger(ledger_url)
    try:
        warning = run_schedule_now(ledger, name, by=cli_user())
    finally:
        ledger.close()
    click.echo(f"schedule {name}: asked to run now")
    if warning is not None:
        click.echo(f"autoclerk: warning: {warning}", err=True)


@click.command()
@engine_options
@systems_option
@click.option("--embedded", is_flag=True,
              help="Also run the bots in this process (the embedded broker: no RabbitMQ, for small installs).")
def beat(embedded: bool, **flags: Any) -> None:
    """Run Celery beat over the ledger's schedules (exactly one per deployment; Ctrl-C stops it)."""
    from ..queue import run_beat

    run_beat(settings_from_flags(**flags), embedded=embedded)
