"""Reading the rows of an ``.xlsx`` workbook as a CSV of the same sheet would give them.

The reader is openpyxl in read-only mode: it parses the sheet's XML as a stream, so the rows of a
workbook are never held whole. python-calamine was measured against it (issue #19's report): it reads
about seven times faster, but builds the whole sheet in memory before the first row, so its peak grows
with the rows: 81 MB against openpyxl's 56 MB for 100,000 change-of-address cases, and 179 MB against
60 MB for 400,000 rows of five columns. What openpyxl still holds grows far more slowly: the workbook's
shared-strings table (every distinct text, as in any xlsx reader) and one emptied XML element per row
read (about 80 bytes; some 80 MB at Excel's limit of 1,048,576 rows). ``benchmarks/xlsx_intake.py``
measures the intake against CSV.

Each cell becomes the text a person sees in the sheet, so the input schema's rules judge it exactly as
they judge a CSV value:

- a date cell becomes its ISO date (``2026-12-31``; with a time of day, ``2026-12-31T09:30:00``), which a
  ``date`` field reads whatever its ``format``;
- a number becomes its digits without a trailing ``.0`` (``12345``, ``12.5``), padded with the leading
  zeros its cell format shows (``00123`` under the format ``00000``), so a ``string`` reference keeps them
  and an ``integer`` or ``decimal`` field reads the number;
- ``TRUE``/``FALSE`` become ``true``/``false``; an empty cell is an empty value;
- a cell holding a spreadsheet error (``#N/A``, ``#DIV/0!``) makes its row unreadable.

The first row of the sheet is the header; row 1 of the messages is the first row under it (the sheet's
row 2), as in a CSV file. Rows without a value are counted as blank, as blank lines of a CSV are.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from workflows import CasesFileError, Workflow

XLSX_SUFFIXES = (".xlsx", ".xlsm")
SHEET_HINT = "name the one that holds the cases with --sheet NAME"
"""How a command line asks for the sheet; the hand-off service passes its own words."""

_ZERO_PADDED = re.compile(r"0+")


def is_workbook(name: str) -> bool:
    """Whether a file name is that of an xlsx workbook (by its suffix, as ``.jsonl`` is told from CSV)."""
    return name.lower().endswith(XLSX_SUFFIXES)


def sheet_rows(source: Path | IO[bytes], name: str, workflow: Workflow, *, sheet: str | None = None,
               sheet_hint: str = SHEET_HINT) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(row number, raw row)`` from one sheet of a workbook, as :func:`orchestrator.queue.intake` does
    from a CSV file: a blank row carries ``__blank__``, an unreadable one ``__error__``.

    Args:
        source: the workbook's path, or a seekable binary file holding it.
        name: how messages name the file.
        sheet: the sheet to read; ``None`` takes the only one (a workbook of several is refused).
        sheet_hint: the words that tell a person how to name the sheet, in the refusal of several sheets.

    Raises:
        CasesFileError: the file is not a readable workbook, has several sheets and none was named, has no
            sheet of that name, or its header lacks a required column (nothing is yielded); or it stops
            being readable part-way (the rows before were yielded).
    """
    import openpyxl

    # openpyxl warns about parts of a workbook it does not read (data validation, conditional formats):
    # nothing a cases file needs, and a warning is no message for whoever handed the file off.
    warnings.filterwarnings("ignore", category=UserWarning, module="openpyxl")
    try:
        book = openpyxl.load_workbook(source, read_only=True, data_only=True, keep_links=False)
    except Exception:  # noqa: BLE001 - a damaged zip or XML can raise anything from inside the reader
        raise CasesFileError(f"{name}: is not a readable .xlsx workbook"
                             + (" (an old .xls file: save it as .xlsx)" if name.lower().endswith(".xls") else "")) from None
    try:
        names = book.sheetnames
        if sheet is None and len(names) > 1:
            raise CasesFileError(f"{name}: the workbook has {len(names)} sheets ({', '.join(names)}); {sheet_hint}")
        if sheet is not None and sheet not in names:
            raise CasesFileError(f"{name}: has no sheet '{sheet}' (its sheets: {', '.join(names)})")
        worksheet = book[sheet if sheet is not None else names[0]]
        if not hasattr(worksheet, "reset_dimensions"):
            raise CasesFileError(f"{name}: '{worksheet.title}' is a chart sheet, not a sheet of rows")
        worksheet.reset_dimensions()  # the size a writer declares may be wrong; read the rows that are there
        rows = worksheet.iter_rows()
        try:
            header = [_text(cell) or "" for cell in next(rows, ())]
        except Exception:  # noqa: BLE001 - see above
            raise CasesFileError(f"{name}: is not a readable .xlsx workbook") from None
        while header and not header[-1]:
            header.pop()
        if not header:
            raise CasesFileError(f"{name}:1: the first row of the sheet is empty; expected a header row naming the case fields")
        missing = [n for n, f in workflow.input.items() if f.required and n not in header]
        if missing:
            raise CasesFileError(f"{name}:1: the header lacks the required column(s) {', '.join(missing)} "
                                 f"of workflow '{workflow.name}'")
        number = 0
        while True:
            try:
                cells = next(rows, None)
            except Exception:  # noqa: BLE001 - see above
                raise CasesFileError(f"{name}: stops being a readable .xlsx workbook after row {number}") from None
            if cells is None:
                return
            number += 1
            yield number, _row(header, cells)
    finally:
        book.close()


def _row(header: list[str], cells: tuple[Any, ...]) -> dict[str, Any]:
    values: list[str | None] = []
    for column, cell in enumerate(cells, start=1):
        if getattr(cell, "data_type", None) == "e" and cell.value is not None:
            return {"__error__": f"has the spreadsheet error {cell.value} in column {_column(header, column)}"}
        values.append(_text(cell))
    while values and values[-1] is None:
        values.pop()
    if not any(value is not None and value.strip() for value in values):
        return {"__blank__": True}
    if len(values) > len(header):
        return {"__error__": "has more values than the header has columns"}
    return dict(itertools.zip_longest(header, values))


def _column(header: list[str], column: int) -> str:
    return header[column - 1] if column <= len(header) and header[column - 1] else f"number {column}"


def _text(cell: Any) -> str | None:
    """A cell's value as the text a person sees in the sheet (see the module's docstring)."""
    value = cell.value
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    if isinstance(value, int):
        text = str(value)
        fmt = getattr(cell, "number_format", "")
        return text.zfill(len(fmt)) if value >= 0 and _ZERO_PADDED.fullmatch(fmt) else text
    if isinstance(value, float):
        return f"{value:.15g}"  # what Excel shows: fifteen significant digits, no binary noise
    return str(value)  # a duration
