"""Cases from an Excel workbook, everywhere cases come in, with real bots on the demo portal: ``autoclerk
run --sheet``, ``POST /api/batches?sheet=`` over real HTTP and the hand-off page's upload in real Chromium.

The workbook has two sheets, so each way in first refuses it in one line naming them; its dates are date
cells, and its notes a whole number stored as a float (a text field gets ``12345``, not ``12345.0``).
The screenshot ``docs/images/handoff/upload-batch-several-sheets.png`` is taken here
(``AUTOCLERK_UPDATE_SCREENSHOTS=1`` writes it there).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import xlsxwriter
from playwright.sync_api import Browser, expect, sync_playwright

from bots import launch_options
from demo_portal import PortalProcess
from tests.conftest import EXAMPLE, ROOT, autoclerk
from tests.integration.handoff_rig import HandoffServer, handoff_server, sign_in

COLUMNS = ["case_ref", "address_line1", "address_line2", "city", "postcode", "country", "contact_method",
           "effective_date", "notes"]


def workbook(path: Path, first: int) -> Path:
    """A workbook whose sheet ``Cases`` holds two good cases (``CASE-{first}`` and the next), a blank row and a
    row with a bad reference, after a sheet ``Read me``."""
    today = dt.date.today()
    book = xlsxwriter.Workbook(str(path))
    book.add_worksheet("Read me").write(0, 0, "The cases are on the sheet Cases.")
    sheet = book.add_worksheet("Cases")
    dates = book.add_format({"num_format": "dd/mm/yyyy"})
    sheet.write_row(0, 0, COLUMNS)
    for row, ref in ((1, f"CASE-{first:06d}"), (2, f"CASE-{first + 1:06d}"), (4, "CASE-1")):
        sheet.write_row(row, 0, [ref, "12 Mill Lane", None, "Leeds", "LS1 4AP", "GB-ENG", "email"])
        sheet.write_datetime(row, 7, dt.datetime.combine(today, dt.time()), dates)
        sheet.write_number(row, 8, 12345.0)
    book.close()
    return path


EXPECTED_REJECTIONS = [(3, "row", "The row is blank"), (4, "case_ref", "Enter a case reference like CASE-000123")]


def test_autoclerk_run_reads_the_named_sheet_of_a_workbook(chromium: str, portal: PortalProcess, tmp_path: Path) -> None:
    cases = workbook(tmp_path / "cases.xlsx", 700001)
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    args = ("run", str(EXAMPLE), "--cases", "cases.xlsx", "--ledger", ledger, "--system", f"portal={portal.url}", "--json")
    refused = autoclerk(*args, cwd=tmp_path)
    assert refused.returncode != 0 and refused.stderr.strip() == (
        "autoclerk: error: cases.xlsx: the workbook has 2 sheets (Read me, Cases); name the one that holds the cases "
        "with --sheet NAME")
    result = autoclerk(*args, "--sheet", "Cases", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["done"], summary["rejected"]) == (2, 2)
    # The command line is for authors: it names the precise rule (the pages and the API say the plain sentence).
    assert [line for line in result.stderr.splitlines() if "(not queued)" in line] == [
        "cases.xlsx: row 3: row: is blank (not queued)",
        "cases.xlsx: row 4: case_ref: must match the pattern ^CASE-[0-9]{6}$ (not queued)"]
    submitted = {s["case_ref"]: s["values"] for s in httpx.get(f"{portal.url}/api/export", timeout=30).json()}
    assert set(submitted) == {"CASE-700001", "CASE-700002"}
    report = autoclerk("batches", "reconcile", summary["batch_id"], "--ledger", ledger, "--json", cwd=tmp_path)
    assert json.loads(report.stdout)["input_sha256"] == hashlib.sha256(cases.read_bytes()).hexdigest()


@pytest.fixture
def server(tmp_path: Path, portal: PortalProcess, chromium: str) -> Iterator[HandoffServer]:
    with handoff_server(tmp_path, portal) as running:
        yield running


def test_the_api_hands_off_the_named_sheet_and_refuses_what_it_cannot_read_in_one_line(
        server: HandoffServer, tmp_path: Path) -> None:
    cases = workbook(tmp_path / "cases.xlsx", 700101)
    content = cases.read_bytes()
    with server.api("alice") as api:
        def post(name: str, body: bytes, **params: str) -> httpx.Response:
            return api.post("/api/batches", params={"workflow": "change-of-address", **params},
                            files={"file": (name, body, "application/octet-stream")})

        several = post("cases.xlsx", content)
        assert several.status_code == 422 and several.json() == {"detail": (
            "cases.xlsx: the workbook has 2 sheets (Read me, Cases); name the one that holds the cases with the "
            "parameter sheet")}
        unreadable = post("cases.xlsx", content[: len(content) // 2])
        assert unreadable.status_code == 422
        assert unreadable.json() == {"detail": "cases.xlsx: is not a readable .xlsx workbook"}
        assert post("cases.csv", b"case_ref\n", sheet="Cases").json() == {
            "detail": "cases.csv: a sheet was named, but only an .xlsx workbook has sheets"}

        answer = post("cases.xlsx", content, sheet="Cases")
        assert answer.status_code == 201, answer.text
        receipt = answer.json()
        assert receipt["accepted"] == 2
        assert [(r["row"], r["field"], r["reason"]) for r in receipt["rejected"]] == EXPECTED_REJECTIONS
        status = server.wait_for_batch(receipt["batch_id"])
        assert status["counts"]["done"] == 2
        report = api.get(f"/api/batches/{receipt['batch_id']}/reconciliation").json()
        assert report["input_sha256"] == hashlib.sha256(content).hexdigest()
        assert report["rows_read"] == 4 and report["balanced"] is True
        case = api.get(f"/api/batches/{receipt['batch_id']}/cases").json()[0]
        payload = api.get(f"/api/cases/{case['id']}").json()["payload"]
        assert payload["notes"] == "12345" and payload["effective_date"] == dt.date.today().isoformat()
    assert {s["case_ref"] for s in server.submissions()} == {"CASE-700101", "CASE-700102"}


@pytest.fixture
def browser(chromium: str) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, **launch_options())
        yield launched
        launched.close()


def test_the_hand_off_page_asks_for_the_sheet_of_a_workbook_and_hands_it_off(
        server: HandoffServer, browser: Browser, tmp_path: Path) -> None:
    cases = workbook(tmp_path / "march.xlsx", 700201)
    page = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
    sign_in(page, server, "alice")
    page.goto(f"{server.url}/hand-off/change-of-address/batch")
    page.set_input_files("#file", str(cases))
    page.get_by_role("button", name="Upload and hand off").click()
    expect(page.locator("#file-error")).to_contain_text(
        "march.xlsx: the workbook has 2 sheets (Read me, Cases); type the name of the sheet that holds the cases "
        "under 'Sheet' and upload the file again")
    folder = ROOT / "docs" / "images" / "handoff" if os.environ.get("AUTOCLERK_UPDATE_SCREENSHOTS") else tmp_path
    page.screenshot(path=str(folder / "upload-batch-several-sheets.png"), full_page=True)

    page.get_by_label("Sheet (optional)").fill("Cases")
    page.set_input_files("#file", str(cases))
    page.get_by_role("button", name="Upload and hand off").click()
    expect(page.locator(".govuk-notification-banner")).to_contain_text("The batch was handed off")
    batch_id = re.search(r"/batches/([^/?]+)", page.url).group(1)  # type: ignore[union-attr]
    assert server.wait_for_batch(batch_id)["counts"]["done"] == 2
    assert {s["case_ref"] for s in server.submissions()} == {"CASE-700201", "CASE-700202"}


def test_explain_takes_its_case_from_the_named_sheet_of_a_workbook(tmp_path: Path) -> None:
    workbook(tmp_path / "cases.xlsx", 700301)
    shown = autoclerk("explain", str(EXAMPLE), "--cases", "cases.xlsx", "--sheet", "Cases", "--case", "2", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "CASE-700302" in shown.stdout and f"fill #effective_date ← {dt.date.today().isoformat()!r}" in shown.stdout
    blank = autoclerk("explain", str(EXAMPLE), "--cases", "cases.xlsx", "--sheet", "Cases", "--case", "3", cwd=tmp_path)
    assert blank.returncode != 0 and blank.stderr.strip() == "autoclerk: error: cases.xlsx: row 3: row: is blank"
    alone = autoclerk("explain", str(EXAMPLE), "--sheet", "Cases", "--case", "{}", cwd=tmp_path)
    assert alone.stderr.strip() == "autoclerk: error: --sheet names the sheet of the --cases file; give --cases FILE too"
