"""``autoclerk status``: progress toward the target (count, rate, projected completion), the unfinished cases at
risk and past their deadline, the target systems whose circuit breaker is open, and the newest batches.

The figures come from :func:`orchestrator.queue.progress_report`, read from the durable ledger, so they
survive any process restart.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import click

from .options import settings_from_flags


@click.command()
@click.option("--ledger", "ledger_url", help="SQLAlchemy URL of the ledger (default from settings).")
@click.option("--target", type=click.IntRange(min=1), help="The target (default AUTOCLERK_TARGET_TRANSACTIONS, 10,000,000).")
@click.option("--window", "window_s", type=click.FloatRange(min=1), help="Seconds the recent rate is measured over (default 600).")
@click.option("--batches", "limit", type=click.IntRange(0, 1000), default=20, show_default=True, help="How many of the newest batches to list.")
@click.option("--json", "as_json", is_flag=True, help="End with one JSON object on the last line.")
def status(ledger_url: str | None, target: int | None, window_s: float | None, limit: int, as_json: bool) -> None:
    """Progress toward the target (count, rate, projected completion) and the newest batches by state."""
    from ..ledger import Ledger
    from ..queue import progress_report

    settings = settings_from_flags(ledger_url=ledger_url)
    ledger = Ledger(settings.ledger_url)
    try:
        report = progress_report(ledger, target or settings.target_transactions, window_s or settings.rate_window_s, limit)
        report["deadlines"] = ledger.reports.deadlines(settings.deadline_margin_s)
        report["deadline_margin"] = settings.deadline_margin
        report["breakers"] = [dataclasses.asdict(b) for _, b in sorted(ledger.breakers.tripped().items())]
    finally:
        ledger.close()
    if as_json:
        click.echo(json.dumps(report))
        return
    _render(report)


def _render(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    console = Console(width=max(Console().width, 120))  # no wrapping in a log or a pipe
    projected = report["projected_completion"] or "no projection (nothing verified in the window)"
    console.print(f"[bold]target[/bold] {report['completed']:,} of {report['target']:,} verified "
                  f"({report['fraction']:.2%}) · {report['per_second']:,.2f}/s over the last "
                  f"{report['rate_window_s']:.0f} s · projected completion {projected}")
    console.print(f"[bold]beside them[/bold] submitted, not verified {report['unverified']:,} (not counted) · "
                  f"failed verification (to a person) {report['verify_failed']:,}")
    bar = Table.grid(padding=(0, 1))
    bar.add_row(ProgressBar(total=report["target"], completed=report["completed"], width=60), f"{report['fraction']:.2%}")
    console.print(bar)
    for workflow, figures in sorted(report["deadlines"].items()):
        style = "bold red" if figures["breached"] else "yellow"
        console.print(f"[{style}]deadlines[/{style}] {workflow}: {figures['breached']:,} past their deadline, "
                      f"{figures['at_risk']:,} at risk (due within {report['deadline_margin']})")
    for b in report["breakers"]:
        then = "being checked now" if b["state"] == "half_open" else f"next check after {_utc(b['probe_at'])}"
        seen = f" ({b['reason']})" if b["reason"] else ""
        console.print(f"[bold red]circuit breaker open[/bold red] {b['system']}: not answering since "
                      f"{_utc(b['opened_at'])}{seen}; no case for it is started, {then}", soft_wrap=True)
    if not report["batches"]:
        console.print("no batches in the ledger")
        return
    table = Table("batch", "workflow", "state", "finished", "done", "to a person", "failed", "cancelled",
                  "waiting", "running")
    for b in report["batches"]:
        c = b["counts"]
        table.add_row(b["id"], b["workflow"], b["state"], f"{b['finished']:,}/{b['total']:,}",
                      f"{c['done']:,}", f"{c['business_exception']:,}", f"{c['failed']:,}", f"{c['cancelled']:,}",
                      f"{c['queued'] + c['retry_scheduled'] + c['paused']:,}", f"{c['in_progress']:,}")
    console.print(table)


def _utc(epoch: float | None) -> str:
    return dt.datetime.fromtimestamp(epoch or 0, dt.timezone.utc).strftime("%H:%M:%S UTC")
