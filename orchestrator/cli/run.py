"""``autoclerk run``: hand a batch off to a workflow and wait until every case has an outcome.

The run itself is :func:`orchestrator.queue.run_batch`; this module reads the flags, draws the progress bar
and prints the summary (``--json`` ends it with one JSON line). Cases left unfinished exit 1.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import click

from ..errors import EXIT_FAILED, EXIT_UNFINISHED
from .options import batch_deadline, cli_user, deadline_options, echo_error, engine_options, settings_from_flags, sheet_option, systems_option


@click.command()
@click.argument("workflow", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--cases", "cases_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="CSV, JSON-lines (.jsonl) or Excel (.xlsx) file of cases.")
@sheet_option
@engine_options
@systems_option
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=1), help="Stop waiting after this many seconds.")
@click.option("--priority", type=click.IntRange(-100, 100), default=0, show_default=True,
              help="Higher runs first where the ledger orders work.")
@deadline_options
@click.option("--json", "as_json", is_flag=True, help="End with one JSON object on the last line.")
def run(workflow: Path, cases_path: Path, as_json: bool, timeout_s: float | None, priority: int, sheet: str | None,
        deadline: str | None, within: str | None, **flags: Any) -> None:
    """Hand a batch of cases off to WORKFLOW and wait until every case has an outcome."""
    settings = settings_from_flags(**flags)
    due = batch_deadline(settings, deadline, within)
    if due is not None and due <= time.time():
        click.echo("autoclerk: warning: the batch's deadline has already passed: its cases count as breached from "
                   "the start", err=True)
    finish(run_batch_with_progress(settings, workflow, cases_path, as_json=as_json, timeout_s=timeout_s,
                                   priority=priority, sheet=sheet, deadline=due, by=cli_user()), as_json)


def run_batch_with_progress(settings: Any, workflow: Path, cases_path: Path, *, as_json: bool,
                            timeout_s: float | None = None, priority: int = 0, sheet: str | None = None,
                            deadline: float | None = None, by: str | None = None) -> Any:
    """:func:`orchestrator.queue.run_batch` with refused rows on standard error and a progress bar (not with ``--json``)."""
    from ..queue import run_batch

    with _progress(enabled=not as_json) as update:
        return run_batch(settings, workflow, cases_path, timeout_s=timeout_s, priority=priority, sheet=sheet,
                         deadline=deadline, by=by,
                         on_rejection=lambda rejection: click.echo(f"{cases_path}: {rejection} (not queued)", err=True),
                         on_handed_off=lambda receipt: update.start(receipt.waiting), on_progress=update,
                         on_timeout=lambda reason: echo_error(f"{reason}; run the same command again to resume"),
                         on_warning=lambda warning: click.echo(f"autoclerk: warning: {warning}", err=True))


def finish(summary: Any, as_json: bool) -> None:
    """Print the summary (and its JSON line); exit 1 when cases were left unfinished, 5 when any failed."""
    out = sys.stdout
    summary.print_text(out)
    if as_json:
        out.write(summary.json_line() + "\n")
    out.flush()
    if not summary.accounted:
        sys.exit(EXIT_UNFINISHED)
    if summary.failed:
        sys.exit(EXIT_FAILED)


class _ProgressBar:
    """The bar of a run: drawn on standard error once the whole file is handed off (the refused rows are
    printed before it), then moved by the batch's counts."""

    def __init__(self, stack: ExitStack, enabled: bool) -> None:
        self._stack, self._enabled = stack, enabled
        self._update: Callable[[dict[str, int]], None] | None = None

    def start(self, total: int) -> None:
        if not self._enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from ..ledger import TERMINAL

        columns = (TextColumn("[bold]cases"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[detail]}"),
                   TimeElapsedColumn())
        progress = self._stack.enter_context(Progress(*columns, console=Console(stderr=True), transient=False,
                                                      refresh_per_second=5))
        task = progress.add_task("cases", total=max(total, 1), detail="")

        def update(counts: dict[str, int]) -> None:
            finished = sum(counts[s] for s in TERMINAL)
            progress.update(task, completed=finished, detail=(
                f"done {counts['done']} · to a person {counts['business_exception']} · failed {counts['failed']} "
                f"· retrying {counts['retry_scheduled']}"))

        self._update = update

    def __call__(self, counts: dict[str, int]) -> None:
        if self._update is not None:
            self._update(counts)


@contextmanager
def _progress(*, enabled: bool) -> Iterator[_ProgressBar]:
    with ExitStack() as stack:
        yield _ProgressBar(stack, enabled)
