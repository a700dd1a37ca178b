"""The tutorial stays honest: its final workflow runs against the demo portal, and a workflow written from
the tutorial alone runs against a second, differently built site (``tests/tutorial_site``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from demo_portal import PortalProcess
from tests.conftest import ROOT, autoclerk
from tests.tutorial_site.app import permit_office

TUTORIAL = (ROOT / "docs" / "tutorial.md").read_text()
SITE = ROOT / "tests" / "tutorial_site"


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def tutorial_file(tmp_path: Path) -> Path:
    block = re.search(r"```yaml\n(# file: phone_note.yaml\n.*?)```", TUTORIAL, re.S)
    assert block, "the tutorial's complete file is missing"
    path = tmp_path / "phone_note.yaml"
    path.write_text(block.group(1))
    return path


def test_the_tutorials_error_examples_are_what_validate_prints(tmp_path: Path) -> None:
    path = tutorial_file(tmp_path)
    text = path.read_text()
    path.write_text(text.replace("  - click: {role: button, name: Sign in}", "  - clik: {role: button, name: Sign in}", 1))
    first = autoclerk("validate", "phone_note.yaml", cwd=tmp_path).stderr.splitlines()[0]
    assert f"```\n{first}\n```" in TUTORIAL
    path.write_text(text.replace("{{ case.summary }}", "{{ case.sumary }}"))
    assert f"```\n{autoclerk('validate', 'phone_note.yaml', cwd=tmp_path).stderr.strip()}\n```" in TUTORIAL


def test_the_tutorials_date_mistake_is_what_validate_prints(tmp_path: Path) -> None:
    path = tutorial_file(tmp_path)
    path.write_text(path.read_text().replace("call_date: {type: date}", "call_date: {type: string}", 1))
    result = autoclerk("validate", "phone_note.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert f"```\n{result.stderr.strip()}\n```" in TUTORIAL
    path.write_text(path.read_text().replace("call_date: {type: string}", 'call_date: {type: date, format: "%d/%m/%Y"}'))
    assert autoclerk("validate", "phone_note.yaml", cwd=tmp_path).returncode == 0


def test_the_tutorials_complete_workflow_records_phone_notes_on_the_demo_portal(
        chromium: str, portal: PortalProcess, tmp_path: Path) -> None:
    path = tutorial_file(tmp_path)
    cases = tmp_path / "calls.csv"
    cases.write_text("case_ref,summary,call_date,copy_to_customer\n"
                     "CASE-000042,Asked about the refund,2026-03-05,no\n"
                     "CASE-000043,Changed bank details,2026-03-06,yes\n"
                     "CASE-000034,Wants to reopen,2026-03-07,no\n")  # every 17th case is closed
    args = ("run", str(path), "--cases", str(cases), "--ledger", f"sqlite:///{tmp_path / 'l.db'}",
            "--system", f"portal={portal.url}", "--json")
    result = autoclerk(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = last_json(result.stdout)
    assert (summary["done"], summary["business_exception"], summary["failed"]) == (2, 1, 0)
    notes = httpx.get(f"{portal.url}/api/notes").json()
    assert sorted((n["case_ref"], n["category"], n["text"], n["notify_customer"]) for n in notes) == [
        ("CASE-000042", "phone", "Call on 05/03/2026: Asked about the refund", False),
        ("CASE-000043", "phone", "Call on 06/03/2026: Changed bank details", True),
    ]
    assert last_json(autoclerk(*args, cwd=tmp_path).stdout)["already_finished"] == 3
    assert len(httpx.get(f"{portal.url}/api/notes").json()) == 2


@pytest.fixture
def office():  # type: ignore[no-untyped-def]
    with permit_office() as url:
        yield url


def test_a_workflow_written_from_the_tutorial_alone_renews_permits_on_a_site_built_differently(
        chromium: str, office: str, tmp_path: Path) -> None:
    cases = tmp_path / "permits.csv"
    cases.write_text("permit,vehicle,registration,months\n"
                     "P-1001,car,ab12cde,12\n"
                     "P-1002,van,XY34 ZZZ,6\n"
                     "P-1003,car,ZZ1 ABC,6\n")  # the office refuses this registration
    workflow = SITE / "renew_permit.yaml"
    assert autoclerk("validate", str(workflow)).returncode == 0
    args = ("run", str(workflow), "--cases", str(cases), "--ledger", f"sqlite:///{tmp_path / 'l.db'}",
            "--system", f"permits={office}", "--json")
    env = {"AUTOCLERK_SECRET_PERMIT_PASSPHRASE": "permits-pw"}
    result = autoclerk(*args, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    summary = last_json(result.stdout)
    assert (summary["done"], summary["business_exception"], summary["failed"]) == (2, 1, 0)
    renewals = httpx.get(f"{office}/api/renewals").json()
    assert sorted((r["permit"], r["vehicle"], r["registration"], r["months"], r["their_ref"]) for r in renewals) == [
        ("P-1001", "car", "AB12CDE", "12", "P-1001"), ("P-1002", "van", "XY34 ZZZ", "6", "P-1002")]
    import sqlite3

    rows = dict(sqlite3.connect(tmp_path / "l.db").execute(
        "select case_ref, coalesce(result_ref, error_message) from transactions").fetchall())
    assert rows["P-1003"] == "The registration number is not valid"
    assert {rows["P-1001"], rows["P-1002"]} == {r["reference"] for r in renewals}


def test_dates_from_a_day_first_spreadsheet_reach_a_day_first_form_with_day_and_month_in_place(
        chromium: str, office: str, tmp_path: Path) -> None:
    cases = tmp_path / "suspensions.csv"
    cases.write_text("permit,suspend_from\n"
                     "P-1001,03/04/2026\n"  # 3 April: read month first, it would be 4 March
                     "P-1002,25/12/2026\n"
                     "P-1003,12/25/2026\n")  # month first: refused at hand-off, never typed
    workflow = SITE / "suspend_permit.yaml"
    args = ("run", str(workflow), "--cases", str(cases), "--ledger", f"sqlite:///{tmp_path / 'l.db'}",
            "--system", f"permits={office}", "--json")
    result = autoclerk(*args, cwd=tmp_path, env={"AUTOCLERK_SECRET_PERMIT_PASSPHRASE": "permits-pw"})
    assert result.returncode == 0, result.stderr
    assert (f"{cases}: row 3: suspend_from: must be a date like 31/12/2026 (day/month/year) (not queued)"
            in result.stderr.splitlines())
    summary = last_json(result.stdout)
    assert (summary["done"], summary["business_exception"], summary["failed"]) == (2, 0, 0)
    suspensions = httpx.get(f"{office}/api/suspensions").json()
    assert sorted((s["permit"], s["start"]) for s in suspensions) == [("P-1001", "2026-04-03"), ("P-1002", "2026-12-25")]


def test_the_permit_office_refuses_a_suspension_date_not_written_as_dd_mm_yyyy(office: str) -> None:
    with httpx.Client(base_url=office, follow_redirects=True) as client:
        client.post("/", data={"email": "officer@city.example", "secret": "permits-pw"})
        for text in ("2026-04-03", "3/4/2026", "04/13/2026"):
            page = client.post("/permits/P-1001/suspend", data={"start": text}).text
            assert "Enter the start date as dd/mm/yyyy, for example 31/12/2026" in page
        assert client.get("/api/suspensions").json() == []
