"""The authors' commands: ``validate``, ``schema``, ``reference`` and ``explain``.

None of them opens a browser or touches the ledger: they check and describe workflow files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from workflows import CasesFileError, WorkflowFileError, load_workflow

from ..errors import EXIT_USAGE, UsageError
from .options import echo_error as _err
from .options import sheet_option


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(files: tuple[Path, ...]) -> None:
    """Check workflow files; print every problem as file:line:column: path: message."""
    bad = 0
    for file in files:
        try:
            load_workflow(file)
        except WorkflowFileError as exc:
            bad += 1
            for problem in exc.problems:
                click.echo(str(problem), err=True)
        else:
            click.echo(f"{file}: ok")
    if bad:
        sys.exit(EXIT_USAGE)


_CHECK = click.option("--check", "check_file", type=click.Path(dir_okay=False, path_type=Path),
                      help="Do not print: exit 1 when this checked-in copy differs from the models.")


@click.command()
@_CHECK
def schema(check_file: Path | None) -> None:
    """Print the JSON Schema of workflow files (generated from the models, for editor completion)."""
    from workflows.schema import schema_text

    _print_or_check(schema_text(), check_file, "schema")


@click.command()
@_CHECK
def reference(check_file: Path | None) -> None:
    """Print the workflow language reference (Markdown, generated from the models' docstrings)."""
    from workflows.reference import reference_markdown

    _print_or_check(reference_markdown(), check_file, "reference")


def _print_or_check(text: str, check_file: Path | None, command: str) -> None:
    if check_file is None:
        click.echo(text, nl=False)
        return
    try:
        current = check_file.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{check_file}: cannot be read ({exc.strerror})") from None
    if current != text:
        _err(f"{check_file} differs from the models; regenerate it with 'autoclerk {command} > {check_file}'")
        sys.exit(1)
    click.echo(f"{check_file}: up to date")


@click.command()
@click.argument("workflow", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--case", "case_spec", required=True, metavar="ROW",
              help="The case: a JSON object, or with --cases the row number (1 = first data row) or case reference.")
@click.option("--cases", "cases_path", type=click.Path(dir_okay=False, path_type=Path),
              help="CSV, JSON-lines (.jsonl) or Excel (.xlsx) file the --case row is taken from.")
@sheet_option
def explain(workflow: Path, case_spec: str, cases_path: Path | None, sheet: str | None) -> None:
    """Print the concrete steps a case would run (templates resolved, secrets masked), without a browser."""
    from workflows.explain import explain as explain_steps

    loaded = load_workflow(workflow)
    for line in explain_steps(loaded, chosen_case(loaded, case_spec, cases_path, flag="--case", sheet=sheet)):
        click.echo(line)


def chosen_case(loaded: Any, spec: str, cases_path: Path | None, *, flag: str, sheet: str | None = None
                ) -> dict[str, Any]:
    """The case a command was pointed at (see :func:`_case_row`; ``sheet`` names the sheet of an ``.xlsx``
    file), typed by the workflow's input schema; a broken rule is one line naming the row, or ``flag`` for
    a case given as JSON."""
    from workflows import CaseDataError, check_case

    if sheet is not None and cases_path is None:
        raise UsageError("--sheet names the sheet of the --cases file; give --cases FILE too")
    row, number = _case_row(loaded, spec, cases_path, sheet)
    try:
        return check_case(loaded.definition.input, row, number)
    except CaseDataError as exc:
        where = f"{cases_path}: row {exc.row}" if cases_path else flag
        raise UsageError(f"{where}: {exc.field}: {exc.reason}") from None


def _case_row(loaded: Any, spec: str, cases_path: Path | None, sheet: str | None) -> tuple[dict[str, Any], int]:
    if cases_path is None:
        try:
            row = json.loads(spec)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--case: expected a JSON object such as '{{\"case_ref\": \"CASE-000001\"}}' "
                             f"(or a row number with --cases), not valid JSON at column {exc.colno}") from None
        if not isinstance(row, dict):
            raise UsageError("--case: expected a JSON object, not a JSON " + type(row).__name__)
        return row, 0
    from ..queue import Rejection, read_cases

    if not cases_path.is_file():
        raise CasesFileError(f"{cases_path}: no such cases file")
    for item in read_cases(cases_path, loaded.definition, sheet=sheet):
        matches = str(item.row) == spec or (not isinstance(item, Rejection) and item.case_ref == spec)
        if matches and isinstance(item, Rejection):
            raise UsageError(f"{cases_path}: {item}")
        if matches and not isinstance(item, Rejection):
            return item.payload, item.row
    raise UsageError(f"{cases_path}: has no row or case reference '{spec}'")
