"""Reading an upload's file field as it arrives, and checking its rows: the multipart reader in pieces of
every size, safe file names, bounded fields and lines, and form posts turned into the same rows."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import FormData

from orchestrator.queue import AcceptedCase, Rejection, read_case_stream
from orchestrator.queue.intake import MAX_LINE_CHARS
from orchestrator.web.forms import form_fields, label_of, readable_errors, row_from_form
from orchestrator.web.upload import MAX_FIELD_BYTES, MultipartFile, UploadError, UploadTooLarge, boundary_of, safe_name
from tests.conftest import EXAMPLE
from workflows import CasesFileError, field_errors, load_workflow

BOUNDARY = "----boundary42"


def body(content: bytes, *, fields: dict[str, str] | None = None, filename: str = "cases.csv") -> bytes:
    parts = b""
    for name, value in (fields or {}).items():
        parts += f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n".encode()
    parts += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
              "Content-Type: text/csv\r\n\r\n").encode() + content + f"\r\n--{BOUNDARY}--\r\n".encode()
    return parts


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


@given(st.binary(max_size=5000), st.integers(min_value=1, max_value=700))
def test_the_file_comes_out_whole_however_the_body_is_cut(content: bytes, size: int) -> None:
    upload = MultipartFile(iter(pieces(body(content, fields={"csrf_token": "t"}), size)), BOUNDARY.encode())
    assert upload.wait_for_file() and upload.fields == {"csrf_token": "t"}
    assert io.BufferedReader(upload).read() == content


def test_fields_before_the_file_are_bounded_and_the_body_size_is_capped() -> None:
    long_field = body(b"x", fields={"csrf_token": "a" * (MAX_FIELD_BYTES + 1)})
    with pytest.raises(UploadError, match="longer than"):
        MultipartFile(iter([long_field]), BOUNDARY.encode()).wait_for_file()
    upload = MultipartFile(iter(pieces(body(b"x" * 10_000), 1000)), BOUNDARY.encode(), max_bytes=5000)
    with pytest.raises(UploadTooLarge):
        io.BufferedReader(upload).read()
    assert not MultipartFile(iter([f"--{BOUNDARY}--\r\n".encode()]), BOUNDARY.encode()).wait_for_file()


@pytest.mark.parametrize(("given_name", "kept"), [
    ("../../etc/passwd", "passwd"), ("C:\\Users\\me\\cases.csv", "cases.csv"), (".hidden.csv", "hidden.csv"),
    ("", "upload"), ("tab\there.csv", "tabhere.csv"), ("x" * 500 + ".csv", "x" * 120),
])
def test_a_file_name_keeps_only_its_last_part_without_control_characters(given_name: str, kept: str) -> None:
    assert safe_name(given_name) == kept


def test_a_request_that_is_not_multipart_is_refused_in_one_sentence() -> None:
    for content_type in ("application/json", "multipart/form-data", ""):
        with pytest.raises(UploadError, match="multipart/form-data upload"):
            boundary_of(content_type)


def test_a_stream_with_an_endless_line_or_bad_bytes_is_refused_without_reading_it_all() -> None:
    workflow = load_workflow(EXAMPLE).definition
    endless = io.StringIO("case_ref," + "x" * (MAX_LINE_CHARS + 10))
    with pytest.raises(CasesFileError, match="has a line longer than"):
        list(read_case_stream(endless, "junk.csv", workflow))
    bad = io.TextIOWrapper(io.BytesIO(b"case_ref\n\xff\xfe"), encoding="utf-8", newline="")
    with pytest.raises(CasesFileError, match="is not UTF-8 text"):
        list(read_case_stream(bad, "junk.csv", workflow))


def test_a_posted_form_becomes_the_row_a_csv_line_would_and_is_checked_by_the_same_rules() -> None:
    workflow = load_workflow(EXAMPLE).definition
    form = FormData([("case_ref", "CASE-000001"), ("address_line1", "1 High Street"), ("city", "Leeds"),
                     ("postcode", "LS1 1AA"), ("country", "GB-ENG"), ("contact_method", "email"),
                     ("effective_date-day", "5"), ("effective_date-month", "3"), ("effective_date-year", "2027")])
    row = row_from_form(workflow, form)
    assert row["effective_date"] == "2027-03-05" and row["address_line2"] == ""
    checked = next(read_case_stream(io.StringIO(",".join(row) + "\n" + ",".join(row.values()) + "\n"), "f", workflow))
    assert isinstance(checked, AcceptedCase) and checked.payload["effective_date"] == "2027-03-05"
    wrong = row_from_form(workflow, FormData([*form.multi_items(), ("effective_date-month", "13")]))
    errors = readable_errors(workflow, field_errors(workflow.input, wrong))
    fields = {f.name: f for f in form_fields(workflow, wrong, errors)}
    assert fields["effective_date"].kind == "date" and fields["effective_date"].label == "Date the change takes effect"
    assert fields["effective_date"].error == "Date the change takes effect must be a real date, like 2026-12-31"
    assert fields["country"].kind == "radios" and fields["notes"].kind == "textarea"
    assert ("GB-SCT", "Scotland") in fields["country"].options  # the option's label shows; the code is posted
    assert isinstance(next(read_case_stream(io.StringIO(",".join(wrong) + "\n" + ",".join(wrong.values()) + "\n"),
                                            "f", workflow)), Rejection)
    assert label_of("address_line1") == "Address line 1"

