"""Intake: bad rows are rejected with row, field and reason; the good rows around them are kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import AcceptedCase, Rejection, read_cases
from tests.conftest import EXAMPLE
from workflows import CasesFileError, load_workflow

WORKFLOW = load_workflow(EXAMPLE).definition
HEADER = "case_ref,address_line1,city,postcode,country,contact_method,effective_date\n"


def write(tmp_path: Path, text: str, name: str = "cases.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_bad_rows_are_rejected_and_good_rows_kept(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER
                 + "CASE-000001,1 High St,Leeds,LS1 4AB,GB-ENG,email,2026-12-01\n"
                 + "CASE-2,1 High St,Leeds,LS1 4AB,GB-ENG,email,2026-12-01\n"
                 + "CASE-000003,1 High St,Leeds,LS1 4AB,GB-ENG,fax,2026-12-01\n"
                 + "CASE-000004,1 High St,Leeds,LS1 4AB,GB-ENG,post,2026-12-01\n")
    items = list(read_cases(path, WORKFLOW))
    assert [i.case_ref for i in items if isinstance(i, AcceptedCase)] == ["CASE-000001", "CASE-000004"]
    assert [str(i) for i in items if isinstance(i, Rejection)] == [
        "row 2: case_ref: must match the pattern ^CASE-[0-9]{6}$",
        "row 3: contact_method: must be one of email, post, phone",
    ]


def test_a_header_without_a_required_column_refuses_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "case_ref,city\nCASE-000001,Leeds\n")
    with pytest.raises(CasesFileError, match=r"cases.csv:1: the header lacks the required column\(s\) address_line1"):
        list(read_cases(path, WORKFLOW))


def test_a_file_that_is_not_utf8_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "cases.csv"
    path.write_bytes(HEADER.encode() + b"CASE-000001,\xff\xfe,Leeds\n")
    with pytest.raises(CasesFileError, match="is not UTF-8 text"):
        list(read_cases(path, WORKFLOW))


def test_json_lines_are_read_too(tmp_path: Path) -> None:
    path = write(tmp_path, '{"case_ref": "CASE-000001", "address_line1": "1 A St", "city": "York", '
                           '"postcode": "YO1 7HH", "country": "GB-ENG", "contact_method": "post", '
                           '"effective_date": "2026-12-01"}\nnot json\n', "cases.jsonl")
    items = list(read_cases(path, WORKFLOW))
    assert isinstance(items[0], AcceptedCase)
    assert str(items[1]) == "row 2: row: is not valid JSON"
