"""``autoclerk heals list|approve``: the locators bots healed or proposed, and a person's approval of one."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import click

from ..errors import LedgerError, UsageError
from .options import cli_user, ledger_option, open_ledger, settings_from_flags

HEAL_KEYS = ("id", "workflow", "digest", "step", "verb", "case_ref", "attempt", "outcome", "old_locator", "new_locator",
             "score", "runner_up", "fingerprint", "candidate", "screenshot", "at", "approved_by", "approved_at",
             "reason", "publish_number")
"""The keys of ``heals list --json``, one object per line."""


@click.group()
def heals() -> None:
    """Locators the bots healed on their own or proposed for approval, and approving one."""


@heals.command("list")
@click.option("--workflow", help="Only the heals of this workflow.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per heal, one per line, newest first.")
@ledger_option
def heals_list(workflow: str | None, as_json: bool, ledger_url: str | None) -> None:
    """Every heal, newest first: the case, the step, the old and the new locator, the score, and whether it
    was made on its own (healed), waits for a person (proposed) or was approved."""
    ledger = open_ledger(ledger_url)
    try:
        found = ledger.heals.list(workflow)
    finally:
        ledger.close()
    for heal in found:
        if as_json:
            click.echo(json.dumps({key: heal[key] for key in HEAL_KEYS}))
        else:
            click.echo(_line(heal))


def _line(heal: dict[str, Any]) -> str:
    state = (f"approved by {heal['approved_by']} (publish {heal['publish_number']})" if heal["approved_at"] is not None
             else "waiting for approval" if heal["outcome"] == "proposed" else "healed on its own")
    when = dt.datetime.fromtimestamp(heal["at"]).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    return (f"{heal['id']:>5}  {when}  {heal['workflow']} {heal['step']}  case {heal['case_ref']}  "
            f"{heal['old_locator']} -> {heal['new_locator']}  score {heal['score']:.2f} "
            f"(next {heal['runner_up']:.2f})  {state}")


@heals.command("approve")
@click.argument("heal_id", metavar="ID", type=int)
@click.option("--reason", required=True, help="Why (kept with the heal, the new publish and in the audit trail).")
@click.option("--write", "write_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Also add the locator to the author's workflow file (the rest of its text is kept as written).")
@ledger_option
def heals_approve(heal_id: int, reason: str, write_file: Path | None, ledger_url: str | None) -> None:
    """Add the locator of heal ID to its step as a fallback and publish that as a new version of the workflow.
    Prints the diff. Batches already handed off keep their version; new hand-offs use the new one."""
    from monitoring import configure_logging
    from workflows import add_fallback, parse_workflow

    from ..queue import approve_heal

    settings = settings_from_flags(ledger_url=ledger_url)
    configure_logging(json=settings.log_json, level=settings.log_level)
    ledger = open_ledger(ledger_url)
    try:
        heal = ledger.heals.get(heal_id)
        edited = None
        if write_file is not None:  # checked before anything is published: a file that cannot take it is refused
            text = write_file.read_text(encoding="utf-8")
            edited = add_fallback(text, heal["step"], heal["new_locator"], str(write_file))
            written = parse_workflow(edited, str(write_file))
            if written.definition.name != heal["workflow"]:
                raise UsageError(f"{write_file} is workflow {written.definition.name}, but heal {heal_id} is of "
                                 f"workflow {heal['workflow']}")
        approval = approve_heal(ledger, heal_id, f"cli:{cli_user()}", reason, origin="cli")
    except LedgerError as exc:
        raise UsageError(str(exc)) from None
    finally:
        ledger.close()
    click.echo(approval.diff, nl=False)
    new = approval.workflow
    click.echo(f"approved heal {heal_id}: published {new.definition.name} version {new.definition.version} as publish "
               f"{approval.number} ({new.digest}); new hand-offs use it, open batches keep their version")
    if write_file is not None and edited is not None:
        write_file.write_text(edited, encoding="utf-8")
        click.echo(f"{write_file}: {heal['step']} now also tries {heal['new_locator']}")
