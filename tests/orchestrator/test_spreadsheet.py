"""Intake from .xlsx workbooks: the same rows, checks and row numbers as the CSV of the same sheet."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import xlsxwriter

from orchestrator import AcceptedCase, Rejection, read_cases
from workflows import CasesFileError, load_workflow

SCHEMA = """\
name: xlsx-intake
version: 1
systems: {target: {}}
input:
  case_ref:  {type: string, pattern: "^[0-9]{6}$"}
  amount:    {type: decimal}
  count:     {type: integer, required: false}
  received:  {type: date, format: "%d/%m/%Y"}
  urgent:    {type: boolean, required: false}
  note:      {type: string, required: false}
steps:
  - goto: /case/{{ case.case_ref }}
"""
HEADER = ["case_ref", "amount", "count", "received", "urgent", "note"]


@pytest.fixture
def workflow(tmp_path: Path) -> Any:
    path = tmp_path / "xlsx-intake.yaml"
    path.write_text(SCHEMA)
    return load_workflow(path).definition


def workbook(path: Path, sheets: dict[str, Sequence[Sequence[Any]]], *, reference_format: str | None = "000000") -> Path:
    """A workbook written by XlsxWriter: each sheet's rows from A1; ``None`` leaves a cell empty; numbers
    in column A carry ``reference_format`` (a reference stored as a number, shown with its zeros)."""
    book = xlsxwriter.Workbook(str(path))
    dates = book.add_format({"num_format": "dd/mm/yyyy"})
    padded = book.add_format({"num_format": reference_format}) if reference_format else None
    for name, rows in sheets.items():
        sheet = book.add_worksheet(name)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if value is None:
                    continue
                if isinstance(value, dt.date):
                    sheet.write_datetime(r, c, value, dates)
                elif c == 0 and isinstance(value, (int, float)) and not isinstance(value, bool):
                    sheet.write_number(r, c, value, padded)
                else:
                    sheet.write(r, c, value)
    book.close()
    return path


def test_cells_are_typed_by_the_input_schema_as_csv_text_would_be(tmp_path: Path, workflow: Any) -> None:
    path = workbook(tmp_path / "cases.xlsx", {"Cases": [
        HEADER,
        [123, 12.5, 3.0, dt.date(2026, 12, 31), True, 12345.0],
        ["000124", 7, 4, "31/12/2026", False, "text"],
    ]})
    first, second = list(read_cases(path, workflow))
    assert isinstance(first, AcceptedCase) and isinstance(second, AcceptedCase)
    # a reference stored as a number keeps the zeros its cell shows; a whole float is no "12345.0"
    assert first.payload == {"case_ref": "000123", "amount": "12.5", "count": 3, "received": "2026-12-31",
                             "urgent": True, "note": "12345"}
    assert second.payload == {"case_ref": "000124", "amount": "7", "count": 4, "received": "2026-12-31",
                              "urgent": False, "note": "text"}


def test_a_number_without_a_zero_padded_format_is_its_digits(tmp_path: Path, workflow: Any) -> None:
    path = workbook(tmp_path / "cases.xlsx", {"Cases": [HEADER, [123456.0, "1.5", None, dt.date(2026, 1, 2)]]},
                    reference_format=None)
    (item,) = read_cases(path, workflow)
    assert isinstance(item, AcceptedCase)
    assert item.payload["case_ref"] == "123456" and item.payload["count"] is None


def test_rejections_count_rows_from_the_first_row_under_the_header_and_blank_rows_are_counted(
        tmp_path: Path, workflow: Any) -> None:
    path = workbook(tmp_path / "cases.xlsx", {"Cases": [
        HEADER,
        [1, 1, None, dt.date(2026, 1, 1)],
        [],                                       # a blank row, as a blank CSV line
        [3, "lots", None, dt.date(2026, 1, 1)],
        [4, 1, 2.5, dt.date(2026, 1, 1)],
        [5, 1, None, "2026/01/01"],
        [6, 1, None, dt.datetime(2026, 1, 1, 9, 30)],  # a time of day is no date
        [7, 1, None, dt.date(2026, 1, 1), None, None, "extra"],
        [8, 1, None, dt.date(2026, 1, 1)],
        [], [None, "  "],                          # trailing rows without a value
    ]})
    items = list(read_cases(path, workflow))
    assert [i.row for i in items if isinstance(i, AcceptedCase)] == [1, 8]
    assert [(str(r), r.kind) for r in items if isinstance(r, Rejection)] == [
        ("row 2: row: is blank", "blank"),
        ("row 3: amount: must be a decimal number such as 12.50", "invalid"),
        ("row 4: count: must be a whole number", "invalid"),
        ("row 5: received: must be a date like 31/12/2026 (day/month/year)", "invalid"),
        ("row 6: received: must be a date like 31/12/2026 (day/month/year)", "invalid"),
        ("row 7: row: has more values than the header has columns", "unreadable"),
        ("row 9: row: is blank", "blank"),
        ("row 10: row: is blank", "blank"),
    ]


def test_a_workbook_of_several_sheets_is_read_only_when_the_sheet_is_named(tmp_path: Path, workflow: Any) -> None:
    path = workbook(tmp_path / "cases.xlsx", {"Notes": [["anything"]], "Cases": [HEADER, [1, 1, None, dt.date(2026, 1, 1)]]})
    with pytest.raises(CasesFileError) as refused:
        list(read_cases(path, workflow))
    assert str(refused.value) == (f"{path}: the workbook has 2 sheets (Notes, Cases); name the one that holds the "
                                  "cases with --sheet NAME")
    (item,) = read_cases(path, workflow, sheet="Cases")
    assert isinstance(item, AcceptedCase) and item.case_ref == "000001"
    with pytest.raises(CasesFileError, match=r"has no sheet 'Sheet1' \(its sheets: Notes, Cases\)$"):
        list(read_cases(path, workflow, sheet="Sheet1"))


@pytest.mark.parametrize("content", [b"case_ref,amount\n1,2\n", b"PK\x03\x04 cut short", b""])
def test_a_file_that_is_not_a_readable_workbook_is_one_line(tmp_path: Path, workflow: Any, content: bytes) -> None:
    path = tmp_path / "cases.xlsx"
    path.write_bytes(content)
    with pytest.raises(CasesFileError) as refused:
        list(read_cases(path, workflow))
    assert str(refused.value) == f"{path}: is not a readable .xlsx workbook"


def test_a_cut_off_workbook_is_refused_in_one_line(tmp_path: Path, workflow: Any) -> None:
    whole = workbook(tmp_path / "whole.xlsx", {"Cases": [HEADER] + [[n, 1, None, dt.date(2026, 1, 1)] for n in range(500)]})
    path = tmp_path / "cases.xlsx"
    path.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(CasesFileError, match=r"cases.xlsx: is not a readable .xlsx workbook$"):
        list(read_cases(path, workflow))


def test_the_header_is_checked_as_a_csv_header_is(tmp_path: Path, workflow: Any) -> None:
    path = workbook(tmp_path / "cases.xlsx", {"Cases": [["case_ref", "note"], [1, "x"]]})
    with pytest.raises(CasesFileError, match=r"cases.xlsx:1: the header lacks the required column\(s\) amount, "
                                             r"received of workflow 'xlsx-intake'$"):
        list(read_cases(path, workflow))
    empty = workbook(tmp_path / "empty.xlsx", {"Cases": []})
    with pytest.raises(CasesFileError, match=r"empty.xlsx:1: the first row of the sheet is empty"):
        list(read_cases(empty, workflow))


def test_a_formula_error_makes_its_row_unreadable(tmp_path: Path, workflow: Any) -> None:
    path = tmp_path / "cases.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Cases")
    sheet.write_row(0, 0, HEADER)
    sheet.write_row(1, 0, ["000001", 1, None, "2026-01-01"])
    sheet.write_formula(1, 1, "=1/0", None, "#DIV/0!")
    book.close()
    (item,) = read_cases(path, workflow)
    assert str(item) == "row 1: row: has the spreadsheet error #DIV/0! in column amount"


def test_a_sheet_named_for_a_csv_file_is_refused(tmp_path: Path, workflow: Any) -> None:
    path = tmp_path / "cases.csv"
    path.write_text(",".join(HEADER) + "\n")
    with pytest.raises(CasesFileError, match="a sheet was named, but only an .xlsx workbook has sheets"):
        list(read_cases(path, workflow, sheet="Cases"))
