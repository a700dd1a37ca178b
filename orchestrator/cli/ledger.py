"""``autoclerk ledger prune|backup|restored``: the ledger's retention and its backup.

``prune`` moves finished cases, with their state changes, the people's actions and their evidence, into a
compressed archive and deletes them from the ledger a chunk at a time (:func:`orchestrator.queue.prune_ledger`);
batch totals, reconciliations and the target stay true. ``backup`` copies a SQLite ledger while it is in use
(:func:`orchestrator.ledger.backup_sqlite`); a PostgreSQL ledger is backed up with ``pg_dump``. ``restored``
tells a ledger just restored from a backup to publish every waiting case again.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import click

from ..errors import LedgerError, UsageError
from .options import cli_user, ledger_option, open_ledger, settings_from_flags


@click.group()
def ledger() -> None:
    """Prune finished cases to an archive, back up the ledger, or prepare a restored one."""


@ledger.command()
@click.option("--finished-before", "finished_before", required=True, metavar="AGE|DATE",
              help="Cases that got their outcome before this: an age in days (400d) or an ISO date (2025-01-31, UTC).")
@click.option("--archive", "archive_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder the archive (gzip JSON lines) and the evidence copies are written into.")
@click.option("--no-archive", is_flag=True, help="Delete without keeping an archive (say so explicitly).")
@click.option("--dry-run", is_flag=True, help="Show what would go; change nothing.")
@click.option("--chunk", type=click.IntRange(1, 10_000), default=500, show_default=True,
              help="Cases per database transaction (each holds the ledger's write lock briefly).")
@click.option("--artifacts-dir", "artifacts_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the evidence is (default AUTOCLERK_ARTIFACTS_DIR).")
@ledger_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
def prune(finished_before: str, archive_dir: Path | None, no_archive: bool, dry_run: bool, chunk: int,
          artifacts_dir: Path | None, ledger_url: str | None, as_json: bool) -> None:
    """Move finished cases (outcome before --finished-before, batch finished or cancelled, no exception
    waiting for a person) with their history and evidence into an archive, and delete them from the ledger."""
    from ..queue import cutoff_time, prune_ledger

    if archive_dir is not None and no_archive:
        raise UsageError("give either --archive DIR or --no-archive, not both")
    if archive_dir is None and not no_archive and not dry_run:
        raise UsageError("pruning deletes cases from the ledger: give --archive DIR to keep them in an archive, "
                         "or --no-archive to delete them without one")
    settings = settings_from_flags(ledger_url=ledger_url, artifacts_dir=artifacts_dir)
    cutoff = cutoff_time(finished_before, time.time(), settings.tz)
    opened = open_ledger(settings.ledger_url)
    try:
        summary = prune_ledger(opened, finished_before=cutoff, archive_dir=None if no_archive else archive_dir,
                               artifacts_dir=settings.artifacts_dir, dry_run=dry_run, chunk=chunk)
        if not dry_run:
            cutoff_text = dt.datetime.fromtimestamp(cutoff, dt.timezone.utc).isoformat(timespec="seconds")
            opened.audit.record(cli_user(), "ledger.prune", "ledger", cutoff_text, origin="cli",
                                detail={**summary.as_json(), "asked": finished_before})
    finally:
        opened.close()
    click.echo(json.dumps(summary.as_json()) if as_json else summary.line())


@ledger.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@ledger_option
def backup(file: Path, ledger_url: str | None) -> None:
    """Copy a SQLite ledger into FILE while it is in use (for PostgreSQL, use pg_dump)."""
    from ..ledger import backup_sqlite

    opened = open_ledger(ledger_url)
    try:
        size = backup_sqlite(opened.engine, file)
    except LedgerError as exc:
        raise UsageError(str(exc)) from None
    finally:
        opened.close()
    click.echo(f"backed up the ledger {opened.url} to {file} ({size:,} bytes)")


@ledger.command()
@ledger_option
def restored(ledger_url: str | None) -> None:
    """After restoring a backup (pg_restore, or a copy of a SQLite backup): publish every waiting case again on
    the next sweep (the broker's messages belong to the time after the backup; duplicates are absorbed)."""
    opened = open_ledger(ledger_url)
    try:
        count = opened.outbox.republish_waiting()
        opened.audit.record(cli_user(), "ledger.restored", "ledger", "restored", origin="cli", detail={"waiting": count})
    finally:
        opened.close()
    click.echo(f"{count:,} waiting cases will be published again by the next sweep (a worker, the service or "
               "'autoclerk run')")
