"""The hand-off service's JSON API with a real server, real bots and the demo portal: a batch handed off
with ``POST /api/batches``, followed with ``GET /api/batches/{id}`` and ``GET /api/cases/{id}``, a single
case, an exception corrected through the API, the OpenAPI document, and the token printed by
``autoclerk users add NAME --role ROLE --token``."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from bots import launch_options
from demo_portal import PortalProcess, generate_cases
from orchestrator.queue import RESULT_KEYS
from tests.conftest import EXAMPLE, autoclerk
from tests.integration.handoff_rig import HandoffServer, handoff_server, sign_in
from workflows import FIELD_MASK


@pytest.fixture
def server(tmp_path: Path, portal: PortalProcess, chromium: str) -> Iterator[HandoffServer]:
    with handoff_server(tmp_path, portal) as running:
        yield running


def test_a_batch_handed_off_through_the_api_reports_its_rejections_and_every_case_is_accounted_for(
        server: HandoffServer, tmp_path: Path) -> None:
    cases = tmp_path / "cases.csv"
    invalid = generate_cases(cases, 12, invalid_rate=0.25, seed=11, start=300)
    with open(cases, "a") as fh:
        fh.write("CASE-000300,1 Any Road,,Leeds,LS1 1AA,GB-ENG,email,2026-12-01,\n")  # repeats row 1
        fh.write("CASE-9,1 Any Road,,Leeds,LS1 1AA,GB-ENG,email,2026-12-01,\n")       # breaks the pattern
        fh.write(",,,,,,,,\n")                                                         # blank
        fh.write(f"CASE-000399,{'x' * 81},,Leeds,LS1 1AA,GB-ENG,email,2026-12-01,\n")  # too long
    with server.api("alice") as api:
        answer = api.post("/api/batches", params={"workflow": "change-of-address"},
                          files={"file": ("cases.csv", cases.read_bytes(), "text/csv")})
        assert answer.status_code == 201, answer.text
        receipt = answer.json()
        assert {"batch_id", "accepted", "rejected"} <= set(receipt)
        assert receipt["accepted"] == 12
        assert [(r["row"], r["field"]) for r in receipt["rejected"]] == [(13, "case_ref"), (14, "case_ref"), (15, "row"),
                                                                         (16, "address_line1")]
        assert "duplicate case reference CASE-000300" in receipt["rejected"][0]["reason"]
        assert receipt["rejected"][1]["reason"] == "Enter a case reference like CASE-000123"  # the author's words, no pattern
        assert api.get(f"/api/batches/{receipt['batch_id']}/rejections").json() == receipt["rejected"]

        status = server.wait_for_batch(receipt["batch_id"])
        assert status["counts"]["done"] == 12 - invalid and status["counts"]["business_exception"] == invalid
        assert status["total"] == 12 and status["open_exceptions"] == invalid and status["rows_rejected"] == 4

        # Reconciliation: every row of the file is accounted for, and the file is named by its SHA-256.
        report = api.get(f"/api/batches/{receipt['batch_id']}/reconciliation").json()
        assert report["rows_read"] == 16 == report["accepted"] + report["rejected"]
        assert report["rejected_by_kind"] == {"duplicate": 1, "invalid": 2, "blank": 1}
        assert report["outcomes"] == {"done": 12 - invalid, "handed back to a person": invalid, "failed": 0, "cancelled": 0}
        assert report["in_progress"] == 0 and report["balanced"] is True
        assert report["input_sha256"] == hashlib.sha256(cases.read_bytes()).hexdigest()
        assert report["handed_off_by"] == "alice" and report["workflow_version"] == 1

        # Every case's result, streamed with the API's keys.
        lines = api.get(f"/api/batches/{receipt['batch_id']}/results", params={"format": "jsonl"}).text.splitlines()
        results = [json.loads(line) for line in lines]
        assert len(results) == 12 and all(list(r) == list(RESULT_KEYS) for r in results)
        handed_back = [r for r in results if r["state"] == "business_exception"]
        assert len(handed_back) == invalid and all(r["error_message"] and r["error_detail"] for r in handed_back)
        table = list(csv.DictReader(io.StringIO(api.get(f"/api/batches/{receipt['batch_id']}/results").text)))
        assert [r["case_ref"] for r in table] == [r["case_ref"] for r in results]
        assert sum(1 for r in table if r["state"] == "done" and r["result_ref"]) == 12 - invalid

        done = api.get(f"/api/batches/{receipt['batch_id']}/cases", params={"state": "done"}).json()
        detail = api.get(f"/api/cases/{done[0]['id']}").json()
        assert detail["state"] == "done" and detail["result_ref"] and detail["history"][-1]["outcome"] == "done"
        refused = api.get(f"/api/batches/{receipt['batch_id']}/cases", params={"state": "open_exception"}).json()
        assert len(refused) == invalid

        # The same file again: nothing is queued twice; every row is reported.
        again = api.post("/api/batches", params={"workflow": "change-of-address"},
                         files={"file": ("cases.csv", cases.read_bytes(), "text/csv")}).json()
        assert again["accepted"] == 0 and again["duplicates"] == 13
        changed = cases.read_text().replace("CASE-000301,", "CASE-000301,2", 1)  # new data for an old reference
        third = api.post("/api/batches", params={"workflow": "change-of-address"},
                         files={"file": ("cases.csv", changed.encode(), "text/csv")}).json()
        report = api.get(f"/api/batches/{third['batch_id']}/reconciliation").json()
        assert report["rows_read"] == 16 and report["accepted"] == 0 and report["balanced"] is True
        assert report["rejected_by_kind"] == {"already_handed_off": 11, "conflict": 1, "duplicate": 1, "invalid": 2,
                                              "blank": 1}
    submitted = [s["case_ref"] for s in server.submissions()]
    assert len(submitted) == len(set(submitted)) == 12 - invalid


def test_one_case_is_handed_off_and_an_exception_is_corrected_through_the_api(
        server: HandoffServer, chromium: str) -> None:
    # The notes field is marked secret: the bot types it, and no page, API answer or export shows it.
    secret_notes = EXAMPLE.read_text().replace("notes:          {type: string, label: Notes, required: false, max_length: 500}",
                                               "notes:          {type: string, label: Notes, required: false, max_length: 500, secret: true}")
    assert "secret: true" in secret_notes
    with server.api("arthur") as api:
        published = api.post("/api/workflows", data={"main": "change_of_address.yaml"}, files=[
            ("files", ("change_of_address.yaml", secret_notes.encode())),
            ("files", ("sign_in.yaml", (EXAMPLE.parent / "sign_in.yaml").read_bytes()))])
        assert published.status_code == 201, published.text
    notes = "Lives with her carer Jane Doe"
    case = {"case_ref": "CASE-400001", "address_line1": "9 Queen Street", "city": "Leeds", "postcode": "ZZ1 1ZZ",
            "country": "GB-ENG", "contact_method": "phone", "effective_date": "2026-12-01", "notes": notes}
    with server.api("alice") as api:
        bad = api.post("/api/cases", params={"workflow": "change-of-address"}, json={**case, "country": "FR"})
        assert bad.status_code == 422 and set(bad.json()["errors"]) == {"country"}
        created = api.post("/api/cases", params={"workflow": "change-of-address"}, json=case)
        assert created.status_code == 201, created.text
        tx_id = created.json()["id"]
        twice = api.post("/api/cases", params={"workflow": "change-of-address"}, json=case)
        assert twice.status_code == 422 and "already handed off" in twice.json()["errors"]["case_ref"]

        found = server.wait_for_case(api, tx_id)
        assert found["state"] == "business_exception" and "Postcode not recognised" in found["error_message"]
        assert found["screenshots"], "the failing step's screenshot is listed"
        shot = found["captioned_screenshots"][0]
        assert (shot["path"], shot["attempt"], shot["name"]) == (found["screenshots"][0], 1, "failure.png")
        assert shot["caption"] == "Attempt 1: the page when the case stopped.", shot["caption"]
        assert [e["id"] for e in api.get("/api/exceptions").json()] == [tx_id]

        with server.api("bob") as bob:
            assert bob.post(f"/api/cases/{tx_id}/close", json={}).status_code == 404
        wrong = api.post(f"/api/cases/{tx_id}/resubmit", json={"data": {"postcode": "nowhere"}})
        assert wrong.status_code == 422 and "postcode" in wrong.json()["errors"]
        fixed = api.post(f"/api/cases/{tx_id}/resubmit", json={"data": {"postcode": "LS6 2AB"}, "note": "typo"})
        assert fixed.status_code == 200, fixed.text
        assert api.post(f"/api/cases/{tx_id}/close", json={}).status_code == 409
        found = server.wait_for_case(api, tx_id)
        assert found["state"] == "done" and found["payload"]["postcode"] == "LS6 2AB"
        assert [(a["username"], a["action"], a["note"]) for a in found["actions"]] == [("alice", "resubmitted", "typo")]
        assert found["payload"]["notes"] == FIELD_MASK and notes not in json.dumps(found)
        results = api.get(f"/api/batches/{found['batch_id']}/results", params={"format": "jsonl"}).text
        assert "CASE-400001" in results and notes not in results
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, **launch_options())
        page = browser.new_page()
        sign_in(page, server, "alice")
        page.goto(f"{server.url}/cases/{tx_id}")
        expect(page.locator("main")).to_contain_text(FIELD_MASK)
        assert notes not in page.content()
        browser.close()
    # The bot typed the real value, both times (the resubmitted case kept it although the API showed the mask).
    assert [(s["case_ref"], s["values"].get("notes")) for s in server.submissions()] == [("CASE-400001", notes)]


def test_the_openapi_document_describes_the_routes_other_systems_use(server: HandoffServer) -> None:
    with server.api("alice") as api:
        spec = api.get("/api/openapi.json").json()
    paths = spec["paths"]
    assert {"/api/batches", "/api/batches/{batch_id}", "/api/cases/{tx_id}", "/api/cases"} <= set(paths)
    upload = paths["/api/batches"]["post"]
    assert "file" in upload["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
    assert [p["name"] for p in upload["parameters"]] == ["workflow", "deadline", "within", "sheet"]
    assert not any(p.startswith(("/batches", "/cases", "/sign-in")) for p in paths), "pages are not in the API"
    assert httpx.get(f"{server.url}/api/openapi.json").status_code == 401


def test_users_add_with_token_prints_a_token_on_its_last_line_that_opens_the_api(
        server: HandoffServer, tmp_path: Path) -> None:
    made = autoclerk("users", "add", "intake-robot", "--role", "caseworker", "--token", "--ledger", server.ledger_url,
                     cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    answer = httpx.get(f"{server.url}/api/batches", headers={"authorization": f"Bearer {token}"})
    assert answer.status_code == 200 and answer.json() == []
    listed = autoclerk("users", "list", "--json", "--ledger", server.ledger_url, cwd=tmp_path)
    robot = next(json.loads(line) for line in listed.stdout.splitlines() if "intake-robot" in line)
    assert robot == {**robot, "roles": ["caseworker"], "password": False, "tokens": 1, "active": True}
    assert token not in Path(server.ledger_url.removeprefix("sqlite:///")).read_bytes().decode("latin-1")

    revoked = autoclerk("users", "revoke-tokens", "intake-robot", "--ledger", server.ledger_url, cwd=tmp_path)
    assert revoked.returncode == 0
    assert httpx.get(f"{server.url}/api/batches", headers={"authorization": f"Bearer {token}"}).status_code == 401

    for args, message in [(("users", "add", "x", "--token"), "give at least one --role"),
                          (("users", "add", "Robot", "--role", "author", "--token"), "user name 'Robot' must be"),
                          (("users", "add", "intake-robot", "--role", "author", "--token"), "already a user"),
                          (("users", "passwd", "intake-robot"), "pass --password-stdin")]:
        failed = autoclerk(*args, "--ledger", server.ledger_url, cwd=tmp_path)
        assert failed.returncode == 2 and failed.stderr.startswith("autoclerk: error: ") and message in failed.stderr, \
            failed.stderr
        assert "Traceback" not in failed.stderr
