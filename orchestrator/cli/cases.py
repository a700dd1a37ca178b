"""``autoclerk cases retry|cancel|rerun|erase REF --workflow W``: an operator's actions on one case.

A case is named by its reference and workflow (one ledger row per workflow and reference). Each action is
:func:`orchestrator.queue.act_on_case`, recorded with ``cli:USER`` (the case's actions) and in the audit
trail as USER from ``cli``. With a broker (``--broker`` or
``AUTOCLERK_BROKER_URL``) what goes back to work is published at once; otherwise the next sweep of a worker,
of the service or of ``autoclerk run`` publishes it. ``erase`` removes one case's personal data
(:func:`orchestrator.queue.erase_case`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..errors import LedgerError, UsageError
from .options import LazyGroup, cli_user, ledger_option, settings_from_flags


@click.group(cls=LazyGroup, lazy_commands={"generate": ".demo:cases_generate"})  # the demo's, imported only when run
def cases() -> None:
    """Act on one case (retry, cancel, run again, erase its data), or write demo case files."""


_WORKFLOW = click.option("--workflow", "workflow", required=True, help="The workflow the case belongs to (its name).")
_BROKER = click.option("--broker", "broker_url", help="Publish at once through this broker (amqp://…).")
_ATTEMPTS = click.option("--attempts", type=click.IntRange(1, 20), default=3, show_default=True,
                         help="Attempts the case gets.")


def _act(ref: str, workflow: str, action: str, ledger_url: str | None, broker_url: str | None, **kwargs: Any) -> str:
    from ..ledger import Ledger
    from ..queue import CASE_ACTION_DONE, Publisher, act_on_case, make_celery

    settings = settings_from_flags(ledger_url=ledger_url, broker_url=broker_url)
    ledger = Ledger(settings.ledger_url)
    try:
        found = ledger.cases.by_ref(workflow, ref)
        if found is None:
            raise UsageError(f"workflow {workflow} has no case {ref} in the ledger at {ledger.url}")
        publisher = None if settings.embedded or action == "cancel" else \
            Publisher(make_celery(settings), ledger, settings.ids_per_message)
        done = act_on_case(ledger, found["id"], action, f"cli:{cli_user()}", origin="cli", publisher=publisher, **kwargs)
    except LedgerError as exc:
        raise UsageError(str(exc)) from None
    finally:
        ledger.close()
    line = f"case {ref} ({workflow}): {CASE_ACTION_DONE[action]}"
    if action == "cancel":
        return line
    if done.not_published is not None:
        return f"{line}; not published now ({done.not_published}); the next sweep publishes it"
    if done.published is None:
        return f"{line}; the next sweep publishes it (a worker, the service, or 'autoclerk run' with its file)"
    return f"{line}; published"


@cases.command()
@click.argument("ref")
@_WORKFLOW
@ledger_option
@_BROKER
@_ATTEMPTS
@click.option("--note", help="Why (kept with the action).")
def retry(ref: str, workflow: str, ledger_url: str | None, broker_url: str | None, attempts: int,
          note: str | None) -> None:
    """Give one failed case more attempts."""
    click.echo(_act(ref, workflow, "retry", ledger_url, broker_url, attempts=attempts, reason=note))


@cases.command()
@click.argument("ref")
@_WORKFLOW
@ledger_option
@click.option("--note", help="Why (kept with the action).")
def cancel(ref: str, workflow: str, ledger_url: str | None, note: str | None) -> None:
    """Cancel one waiting case (a running one finishes)."""
    click.echo(_act(ref, workflow, "cancel", ledger_url, None, reason=note))


@cases.command()
@click.argument("ref")
@_WORKFLOW
@click.option("--reason", required=True, help="Why the case must run again (kept with the action).")
@ledger_option
@_BROKER
@_ATTEMPTS
def rerun(ref: str, workflow: str, reason: str, ledger_url: str | None, broker_url: str | None, attempts: int) -> None:
    """Run a case that has an outcome again, deliberately: the workflow's lookup runs first, so a record the
    target system already holds ends it done without submitting twice."""
    click.echo(_act(ref, workflow, "rerun", ledger_url, broker_url, attempts=attempts, reason=reason))


@cases.command()
@click.argument("ref")
@_WORKFLOW
@click.option("--reason", required=True, help="Why the data is erased (the request; kept with the case).")
@click.option("--artifacts-dir", "artifacts_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the evidence is (default AUTOCLERK_ARTIFACTS_DIR).")
@ledger_option
def erase(ref: str, workflow: str, reason: str, artifacts_dir: Path | None, ledger_url: str | None) -> None:
    """Erase the personal data of one case that has an outcome (its data, output, error texts and evidence),
    keeping the fact and outcome of the transaction."""
    from ..ledger import Ledger
    from ..queue import erase_case

    settings = settings_from_flags(ledger_url=ledger_url, artifacts_dir=artifacts_dir)
    ledger = Ledger(settings.ledger_url)
    try:
        found = ledger.cases.by_ref(workflow, ref)
        if found is None:
            raise UsageError(f"workflow {workflow} has no case {ref} in the ledger at {ledger.url}")
        erased = erase_case(ledger, found["id"], f"cli:{cli_user()}", reason, settings.artifacts_dir, origin="cli")
    except LedgerError as exc:
        raise UsageError(str(exc)) from None
    finally:
        ledger.close()
    click.echo(f"case {ref} ({workflow}): " + ("its personal data is erased; its outcome is kept" if erased
                                               else "already erased; nothing changed"))
