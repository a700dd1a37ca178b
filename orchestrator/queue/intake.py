"""Reading a batch of cases (CSV, JSON lines or an ``.xlsx`` workbook) row by row and checking each
against the input schema.

A workbook's rows are read by :mod:`.spreadsheet` as the text a CSV of the sheet would hold, so every
format meets the same checks. Rows are streamed: only one chunk is held at a time. A bad row becomes a :class:`Rejection` with its row
number, field and reason and never reaches the ledger; the rows around it are kept.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from workflows import CaseDataError, CasesFileError, Workflow, check_case, to_json_value

from ..deadlines import DeadlineError, deadline_at, time_zone
from ..settings import Settings
from .spreadsheet import SHEET_HINT, is_workbook, sheet_rows

CHUNK_ROWS = 10000


REJECTION_KINDS = {
    "invalid": "had a missing or wrong value",
    "unreadable": "could not be read",
    "blank": "blank",
    "duplicate": "repeated a case reference of an earlier row of the file",
    "already_handed_off": "already handed off in an earlier batch",
    "conflict": "conflicted with a case handed off in an earlier batch",
    "already_finished": "already finished in an earlier batch (not run again)",
}
"""Why a row was not queued, by category (the key is what the ledger, the JSON and the API say), with
the plain words a report uses."""


@dataclass(frozen=True)
class Rejection:
    """A row that was not accepted: its number (1 = first data row), the field, why (a sentence a caseworker
    reads: the ledger keeps it and the pages, exports and API show it), the category of why (one of
    :data:`REJECTION_KINDS`), and the precise rule for authors (``str()`` gives it, as ``autoclerk run``
    prints it; it may hold the field's regular expression)."""

    row: int
    field: str
    reason: str
    kind: str = "invalid"
    rule: str | None = None

    def __str__(self) -> str:
        return f"row {self.row}: {self.field}: {self.rule or self.reason}"


@dataclass(frozen=True)
class AcceptedCase:
    """A row that was accepted: its number, reference, typed fields (as JSON values) and its own deadline
    (the reserved column ``_deadline``; ``None``: the batch's deadline, if any, applies)."""

    row: int
    case_ref: str
    payload: dict[str, Any]
    deadline: float | None = None


DEADLINE_COLUMN = "_deadline"
"""The reserved column that gives one case its own deadline (input fields may not start with ``_``)."""


MAX_LINE_CHARS = 1024 * 1024
"""The longest line a cases file may have: a longer one (a huge field, or a file with no line breaks)
refuses the file before it can fill memory."""


def _lines(handle: IO[str], name: str) -> Iterator[str]:
    """The handle's lines, each read with a bound, so a line with no end never has to fit in memory."""
    while True:
        line = handle.readline(MAX_LINE_CHARS + 1)
        if not line:
            return
        if len(line) > MAX_LINE_CHARS:
            raise CasesFileError(f"{name}: has a line longer than {MAX_LINE_CHARS:,} characters; "
                                 "expected CSV or JSON lines of case fields")
        yield line


def _open_rows(path: Path, workflow: Workflow, *, name: str, sheet: str | None, sheet_hint: str
               ) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(row number, raw row)`` from a file (see :func:`_rows`), a workbook by its suffix."""
    if path.is_dir():
        raise CasesFileError(f"{name}: is a directory, expected a CSV, JSON-lines or .xlsx file")
    if not path.exists():
        raise CasesFileError(f"{name}: no such cases file")
    if is_workbook(name):
        yield from sheet_rows(path, name, workflow, sheet=sheet, sheet_hint=sheet_hint)
        return
    if sheet is not None:
        raise CasesFileError(f"{name}: a sheet was named, but only an .xlsx workbook has sheets")
    try:
        handle = open(path, encoding="utf-8-sig", newline="")  # a spreadsheet's byte-order mark is not a column name
    except OSError as exc:
        raise CasesFileError(f"{name}: cannot be read ({exc.strerror})") from None
    with handle:
        yield from _rows(handle, name, workflow, json_lines=name.lower().endswith(JSON_LINES_SUFFIXES))


JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")


def _rows(handle: IO[str], name: str, workflow: Workflow, *, json_lines: bool) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(row number, raw row)``; a row that cannot be parsed carries ``__error__``.

    A CSV whose header lacks a required field of ``workflow`` is refused before any row is yielded.
    """
    try:
        if json_lines:
            for number, line in enumerate(_lines(handle, name), start=1):
                if not line.strip():
                    yield number, {"__blank__": True}
                    continue
                try:
                    value = json.loads(line)
                except ValueError:
                    yield number, {"__error__": "is not valid JSON"}
                    continue
                yield number, value if isinstance(value, dict) else {"__error__": "is not a JSON object"}
        else:
            csv.field_size_limit(MAX_LINE_CHARS)  # a field as long as a line: the input schema's max_length judges it
            reader = csv.reader(_lines(handle, name))
            header = next(reader, None)
            if not header:
                raise CasesFileError(f"{name}:1: the file is empty; expected a header row naming the case fields")
            missing = [n for n, f in workflow.input.items() if f.required and n not in header]
            if missing:
                raise CasesFileError(f"{name}:1: the header lacks the required column(s) {', '.join(missing)} "
                                     f"of workflow '{workflow.name}'")
            # Not csv.DictReader: it skips blank rows without a trace, and a batch's reconciliation counts them.
            for number, values in enumerate(reader, start=1):
                if not any(value.strip() for value in values):
                    yield number, {"__blank__": True}
                elif len(values) > len(header):
                    yield number, {"__error__": "has more values than the header has columns"}
                else:
                    yield number, dict(itertools.zip_longest(header, values[:len(header)]))
    except UnicodeDecodeError:
        raise CasesFileError(f"{name}: is not UTF-8 text") from None
    except csv.Error as exc:
        raise CasesFileError(f"{name}: is not readable CSV ({exc})") from None


def read_cases(path: Path, workflow: Workflow, *, sheet: str | None = None, name: str | None = None,
               sheet_hint: str = SHEET_HINT, tz: dt.tzinfo | None = None) -> Iterator[AcceptedCase | Rejection]:
    """Yield each row of a file as an :class:`AcceptedCase` (typed, as JSON values) or a :class:`Rejection`.

    The format goes by the name's suffix: ``.xlsx`` (or ``.xlsm``) a workbook, ``.jsonl`` (or ``.ndjson``)
    JSON lines, anything else CSV with a header row.

    Args:
        sheet: the sheet of a workbook to read (one of several); naming one for another format refuses it.
        name: how messages name the file (default: its path), e.g. the name an upload was given.
        sheet_hint: how to tell a person to name the sheet when a workbook has several.
        tz: the zone of a ``_deadline`` written without an offset (default: ``AUTOCLERK_TIMEZONE``'s default).

    Raises:
        CasesFileError: the file cannot be read at all (nothing from it is taken).
    """
    return _checked(_open_rows(path, workflow, name=name or str(path), sheet=sheet, sheet_hint=sheet_hint), workflow, tz)


def read_case_stream(handle: IO[str], name: str, workflow: Workflow, *, json_lines: bool = False,
                     tz: dt.tzinfo | None = None) -> Iterator[AcceptedCase | Rejection]:
    """Like :func:`read_cases`, from an open text stream (an upload); ``name`` names it in messages.

    Raises:
        CasesFileError: the stream cannot be read as cases (the rows before the fault were yielded).
    """
    return _checked(_rows(handle, name, workflow, json_lines=json_lines), workflow, tz)


def check_row(workflow: Workflow, row: dict[str, Any], number: int = 1, *, tz: dt.tzinfo | None = None
              ) -> AcceptedCase | Rejection:
    """Check one raw row (a form, an API call) with exactly the rules a batch row is checked with."""
    return next(_checked(iter([(number, row)]), workflow, tz))


def _checked(rows: Iterator[tuple[int, dict[str, Any]]], workflow: Workflow,
             tz: dt.tzinfo | None) -> Iterator[AcceptedCase | Rejection]:
    zone = tz or time_zone(Settings.model_fields["timezone"].default)
    for number, row in rows:
        if "__blank__" in row:
            yield Rejection(number, "row", "The row is blank", "blank", rule="is blank")
            continue
        if "__error__" in row:
            yield Rejection(number, "row", row["__error__"], "unreadable")
            continue
        try:
            typed = check_case(workflow.input, row, number)
        except CaseDataError as exc:
            yield Rejection(number, exc.field, exc.message, rule=exc.reason)
            continue
        deadline = None
        written = row.get(DEADLINE_COLUMN)
        if written not in (None, ""):
            try:
                deadline = deadline_at(str(written), zone)
            except DeadlineError as exc:
                yield Rejection(number, DEADLINE_COLUMN, f"The deadline cannot be read: {exc}",
                                rule=f"is not a deadline: {exc}")
                continue
        payload = {k: to_json_value(v) for k, v in typed.items()}
        yield AcceptedCase(number, str(payload[workflow.reference_field]), payload, deadline)
