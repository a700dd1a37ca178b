"""``autoclerk try``: run one case now, against the real system, and show each step: the author's loop.

Nothing is recorded: no ledger, no broker, no batch. Each step is printed as it ends, with its time, and
a screenshot is taken after it (password fields and secret fields masked) into a folder the command
names. The page's own script errors and console errors are printed under the step they happened in. The
run stops before the first submitting step unless ``--submit`` is given.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Any

import click

from ..errors import UsageError
from .authoring import chosen_case
from .options import settings_from_flags, sheet_option, systems_option


class StoppedBeforeSubmit(Exception):
    """The run reached a submitting step without ``--submit``: it stops there, having changed nothing."""


@click.command("try")
@click.argument("workflow", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--cases", "cases_path", type=click.Path(dir_okay=False, path_type=Path),
              help="The cases file to take the case from (with --row or --case): CSV, .jsonl or .xlsx.")
@sheet_option
@click.option("--row", type=click.IntRange(min=1), help="The data row of --cases (1 = the first, as rejections count).")
@click.option("--case", "case_ref", help="The case reference of a row of --cases.")
@click.option("--case-json", "case_json", help="The case as a JSON object, instead of a file.")
@systems_option
@click.option("--chromium", "chromium_path", help="Chromium executable, 'headless-shell' or 'system'.")
@click.option("--submit", is_flag=True, help="Let it run the submitting steps too (nothing records that it did).")
@click.option("--headed", is_flag=True, help="Open a browser window (needs a display).")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path),
              help="Where the screenshots go (default: autoclerk-try/WORKFLOW-TIME).")
def try_case(workflow: Path, cases_path: Path | None, sheet: str | None, row: int | None, case_ref: str | None, case_json: str | None,
             systems: tuple[str, ...], chromium_path: str | None, submit: bool, headed: bool, out: Path | None) -> None:
    """Run one case now through real bots against the real system, step by step, recording nothing.

    Pick the case with --cases FILE and --row N or --case REF, or give it with --case-json. It stops
    before the first submitting step unless --submit is given.
    """
    from bots import BotEngine, BotError, BotJob, BusinessException, find_chromium
    from monitoring import configure_logging, register_secret
    from workflows import SecretValues, load_workflow

    from ..queue import bot_config, check_configuration

    chosen = [name for name, given in (("--row", row is not None), ("--case", case_ref is not None),
                                       ("--case-json", case_json is not None)) if given]
    if len(chosen) != 1:
        raise UsageError("give the case with exactly one of --cases FILE --row N, --cases FILE --case REF, or "
                         "--case-json JSON" + (f" (got {', '.join(chosen)})" if chosen else ""))
    if (cases_path is None) != (case_json is not None):
        raise UsageError("--row and --case take the case from --cases FILE; --case-json needs no file")
    if headed and not os.environ.get("DISPLAY") and os.name == "posix":
        raise UsageError("--headed needs a display (DISPLAY is not set); without it, look at the screenshot "
                         "taken after each step")
    settings = settings_from_flags(systems=systems, chromium_path=chromium_path or ("system" if headed else None))
    configure_logging(json=False, level=settings.log_level)
    loaded = load_workflow(workflow)
    definition = loaded.definition
    if definition.part:
        raise UsageError(f"{workflow}: is a part (part: true); try the workflow that calls it")
    spec = case_json if case_json is not None else str(row) if row is not None else str(case_ref)
    case = chosen_case(loaded, spec, cases_path, flag="--case-json", sheet=sheet)
    check_configuration(loaded, settings)
    executable = find_chromium(settings.chromium_path)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = (out or Path("autoclerk-try") / f"{definition.name}-{stamp}").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    reference = str(case.get(definition.reference_field, ""))
    click.echo(f"trying {definition.name} v{definition.version} on case {reference or '(no reference)'}; "
               f"screenshots in {folder}")
    if not submit and loaded.submits:
        click.echo("it stops before the first submitting step (--submit lets it go on)")

    shots = {"count": 0, "errors": 0, "stopped": 0}

    async def after_step(ctx: Any, path: str, seconds: float, ok: bool) -> None:
        shots["count"] += 1
        depth = path.count(".then[") + path.count(".else[") + path.count(".steps[") + path.count(">")
        status = "ok  " if ok else "stop" if shots["stopped"] else "FAIL"
        click.echo(f"{'  ' * depth}{status} {seconds:6.2f} s  {path}")
        for error in ctx.page_errors[shots["errors"]:]:
            click.echo(f"{'  ' * depth}      page: {ctx.mask(error)}")
        shots["errors"] = len(ctx.page_errors)
        if ctx.page.is_closed():
            return
        name = f"{shots['count']:03d}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', path)[:80]}.png"
        masks = [ctx.page.locator("input[type=password]"), *ctx.secret_locators]
        try:
            await ctx.page.screenshot(path=str(folder / name), mask=masks, full_page=True, timeout=5000)
        except Exception:  # noqa: BLE001 - a screenshot is a help, never the reason a try fails
            pass

    def before_effect() -> None:
        if not submit:
            shots["stopped"] = 1
            raise StoppedBeforeSubmit()

    engine = BotEngine(bot_config(settings, chromium_path=executable, artifacts_dir=folder / "evidence",
                                  headless=not headed, reuse_sessions=False))
    secrets = SecretValues(settings.secrets_file, on_read=register_secret)
    try:
        result = engine.run(BotJob(loaded, definition.steps, case, reference, 1, secrets, on_step=after_step),
                            before_effect=before_effect)
    except StoppedBeforeSubmit:
        click.echo("stopped before the first submitting step: nothing was submitted (--submit lets it go on)")
        return
    except BotError as exc:
        kind = "handed back to a person" if isinstance(exc, BusinessException) else "failed"
        click.echo(f"the case would be {kind}: {exc}")
        for path in getattr(exc, "evidence", None) or []:
            click.echo(f"  evidence: {path}")
        raise click.exceptions.Exit(1) from None
    finally:
        engine.close()
    shown = ", ".join(f"{k}={v!r}" for k, v in result.output.items()) or "no output"
    click.echo(f"done: {shown}")
    if submit and loaded.submits:
        click.echo("try recorded nothing: a later 'run' of this case does not know it was submitted. Give the "
                   "workflow 'lookup: {when: always, …}' so that run finds it, or use a new case reference")
