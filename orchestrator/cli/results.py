"""``autoclerk results export``: every case's result of a batch, as CSV, JSON lines or an xlsx workbook."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..ledger import STATES
from .options import existing_batch, open_ledger


@click.group()
def results() -> None:
    """Export the results of a batch's cases."""


@results.command("export")
@click.argument("batch_id")
@click.option("--format", "fmt", type=click.Choice(("csv", "jsonl", "xlsx")), default="csv", show_default=True)
@click.option("--out", "out", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="The file to write (default: standard output; an xlsx export needs a file).")
@click.option("--state", type=click.Choice(STATES), help="Only the cases in this state.")
@click.option("--ledger", "ledger_url", help="SQLAlchemy URL of the ledger (default from settings).")
def export(batch_id: str, fmt: str, out: Path | None, state: str | None, ledger_url: str | None) -> None:
    """One row per case, with the keys of 'batches show --json' as columns: case_ref, state, attempts,
    result_ref, output, error_class, error_message, error_detail, evidence. Streamed: memory does not grow
    with the batch. Fields the workflow marks secret are masked."""
    from ..queue import export_results

    ledger = open_ledger(ledger_url)
    try:
        existing_batch(ledger, batch_id)
        count = export_results(ledger, batch_id, fmt, out if out is not None else sys.stdout, state=state)
    finally:
        ledger.close()
    if out is not None:
        click.echo(f"{count:,} case(s) of batch {batch_id} written to {out}", err=True)
