"""The CLI end to end: the demo, a second run on the same ledger, RabbitMQ with two workers, bad input."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from demo_portal import PortalProcess, generate_cases
from tests.conftest import EXAMPLE, always_looking, autoclerk, wait_for_consumers


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def test_the_demo_accounts_for_every_case_and_the_portal_holds_one_submission_per_valid_case(
        chromium: str, tmp_path: Path) -> None:
    result = autoclerk("demo", "--cases", "12", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = last_json(result.stdout)
    assert summary["total"] == 12 and summary["unfinished"] == 0
    assert summary["done"] + summary["business_exception"] + summary["failed"] == 12
    assert summary["failed"] == 0
    assert summary["portal_submissions"] == summary["done"]
    assert {"total", "done", "business_exception", "failed", "elapsed_s", "per_second"} <= set(summary)


def test_a_batch_run_records_valid_cases_once_and_hands_back_refused_ones_with_the_message(
        chromium: str, portal: PortalProcess, tmp_path: Path) -> None:
    cases = tmp_path / "cases.csv"
    invalid = generate_cases(cases, 10, invalid_rate=0.3, seed=3)
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    args = ("run", str(EXAMPLE), "--cases", str(cases), "--ledger", ledger, "--system", f"portal={portal.url}", "--json")
    first = autoclerk(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    summary = last_json(first.stdout)
    assert (summary["done"], summary["business_exception"]) == (10 - invalid, invalid)
    export = httpx.get(f"{portal.url}/api/export").json()
    rows = list(__import__("csv").DictReader(cases.read_text().splitlines()))
    valid = {r["case_ref"]: r for r in rows}
    assert sorted(e["case_ref"] for e in export) == sorted(e["case_ref"] for e in export if e["case_ref"] in valid)
    assert len(export) == len({e["case_ref"] for e in export}) == 10 - invalid
    for entry in export:
        row = valid[entry["case_ref"]]
        assert entry["values"]["postcode"] == row["postcode"] and entry["values"]["city"] == row["city"]
    # Why each case came back, without opening the ledger: 'batches show', its JSON, the export, the reconciliation.
    batch = summary["batch_id"]
    handed_off = [json.loads(line) for line in autoclerk("audit", "--ledger", ledger, "--json").stdout.splitlines()]
    assert [(r["action"], r["object_id"], r["origin"], r["detail"]["accepted"]) for r in handed_off] == [
        ("batch.hand_off", batch, "cli", 10)], "the hand-off is in the audit trail, from the command line"
    shown = autoclerk("batches", "show", batch, "--ledger", ledger, "--state", "business_exception", "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    *cases_shown, totals = [json.loads(line) for line in shown.stdout.splitlines()]
    assert len(cases_shown) == invalid and totals["counts"]["business_exception"] == invalid == totals["shown"]
    assert all(list(c) == ["case_ref", "state", "attempts", "result_ref", "output", "error_class", "error_message",
                           "error_detail", "evidence"] for c in cases_shown)
    assert all("Postcode not recognised" in c["error_message"] or "within the last 30 days" in c["error_message"]
               for c in cases_shown)
    assert all(c["error_detail"].startswith("step steps[16].extract (change-of-address v1, line 44): ")
               and c["evidence"] for c in cases_shown), cases_shown
    text = autoclerk("batches", "show", batch, "--ledger", ledger, cwd=tmp_path).stdout
    assert text.splitlines()[0].startswith(f"batch {batch}: change-of-address, finished; 10 case(s)")
    assert len(text.splitlines()) >= 11 and "detail: step " in text
    export_file = tmp_path / "results.csv"
    exported = autoclerk("results", "export", batch, "--ledger", ledger, "--format", "csv", "--out", str(export_file),
                         cwd=tmp_path)
    assert exported.returncode == 0 and f"10 case(s) of batch {batch} written" in exported.stderr
    assert len(list(__import__("csv").DictReader(export_file.read_text().splitlines()))) == 10
    report = autoclerk("batches", "reconcile", batch, "--ledger", ledger, cwd=tmp_path)
    assert report.returncode == 0 and "rows read 10 = accepted 10 + rejected 0" in report.stdout
    assert f"accepted 10 = done {10 - invalid} + handed back to a person {invalid} + failed 0" in report.stdout
    assert json.loads(autoclerk("batches", "reconcile", batch, "--ledger", ledger, "--json", cwd=tmp_path).stdout
                      .splitlines()[-1])["balanced"] is True
    import sqlite3

    with sqlite3.connect(tmp_path / "ledger.db") as db:  # a row the figures no longer account for
        db.execute("update batches set rows_read = rows_read + 1 where id = ?", (batch,))
    off = autoclerk("batches", "reconcile", batch, "--ledger", ledger, cwd=tmp_path)
    assert off.returncode == 1 and off.stdout.splitlines()[-1].startswith("THE SUMS DO NOT HOLD")
    assert autoclerk("results", "export", batch, "--ledger", ledger, "--format", "xlsx", cwd=tmp_path).stderr == (
        "autoclerk: error: an xlsx export needs a file: give --out FILE.xlsx\n")

    again = autoclerk(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    second = last_json(again.stdout)
    assert second["already_finished"] == 10 and second["processed"] == 0
    assert len(httpx.get(f"{portal.url}/api/export").json()) == 10 - invalid


def test_the_same_batch_runs_through_rabbitmq_with_two_worker_processes(
        chromium: str, rabbitmq: str, portal: PortalProcess, tmp_path: Path) -> None:
    cases = tmp_path / "cases.csv"
    invalid = generate_cases(cases, 8, invalid_rate=0.25, seed=5, start=500)
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    common = ("--broker", rabbitmq, "--ledger", ledger, "--system", f"portal={portal.url}")
    logs = [open(tmp_path / f"worker-{i}.log", "w") for i in range(2)]  # noqa: SIM115 - closed below
    workers = [subprocess.Popen([sys.executable, "-m", "orchestrator", "worker", "--concurrency", "2", *common],
                                cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=log) for log in logs]
    try:
        wait_for_consumers(rabbitmq, 2)
        result = autoclerk("run", str(EXAMPLE), "--cases", str(cases), *common, "--json", "--timeout", "400",
                           cwd=tmp_path)
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(timeout=60)
        for log in logs:
            log.close()
    assert result.returncode == 0, result.stderr
    summary = last_json(result.stdout)
    assert (summary["done"], summary["business_exception"], summary["failed"]) == (8 - invalid, invalid, 0)
    export = httpx.get(f"{portal.url}/api/export").json()
    assert len(export) == len({e["case_ref"] for e in export}) == 8 - invalid
    import sqlite3

    owners = {o.split(":")[1].split("/")[0] for (o,) in sqlite3.connect(tmp_path / "ledger.db").execute(
        "select lease_owner from transactions")}
    text = "\n".join((tmp_path / f"worker-{i}.log").read_text() for i in range(2))
    assert len(owners) == 2, f"both worker processes took work; their logs:\n{text}"


@pytest.mark.parametrize(("args", "expected"), [
    (("run", "missing.yaml", "--cases", "cases.csv"), "missing.yaml:0:0: no such workflow file"),
    (("run", str(EXAMPLE), "--cases", "nope.csv"), "autoclerk: error: nope.csv: no such cases file"),
    (("run", str(EXAMPLE), "--cases", "."), "autoclerk: error: Invalid value for '--cases'"),
    (("run", str(EXAMPLE), "--cases", "binary.csv", "--system", "portal=http://127.0.0.1:9"),
     "autoclerk: error: binary.csv: is not UTF-8 text"),
    (("demo", "--bogus"), "autoclerk: error: No such option '--bogus'"),
    (("demo", "--broker", "redis://x"), "autoclerk: error: setting 'broker_url'"),
    (("validate", "broken.yaml"), "broken.yaml:1:10: version: input should be a valid integer"),
])
def test_a_user_mistake_is_one_line_and_a_non_zero_exit(tmp_path: Path, args: tuple[str, ...], expected: str) -> None:
    (tmp_path / "binary.csv").write_bytes(b"case_ref\n\xff\xfe\xfd\n")
    (tmp_path / "broken.yaml").write_text("version: one\n")
    result = autoclerk(*args, cwd=tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert any(line.startswith(expected) for line in lines), result.stderr
    assert all(line.startswith(("autoclerk: error: ", "broken.yaml:", "missing.yaml:")) for line in lines)


FAILING = """
name: always-fails
version: 1
max_attempts: 1
systems:
  portal: {}
input:
  case_ref: {type: string, required: true}
steps:
  - goto: {system: portal, url: /login}
  - fail: {message: "the system could not take it", code: refused_by_test, kind: application}
"""


def test_a_run_whose_cases_failed_exits_5_and_its_batch_finishes_and_refuses_a_pause(
        chromium: str, portal: PortalProcess, tmp_path: Path) -> None:
    (tmp_path / "fails.yaml").write_text(FAILING)
    (tmp_path / "cases.csv").write_text("case_ref\nF-1\nF-2\n")
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    result = autoclerk("run", "fails.yaml", "--cases", "cases.csv", "--ledger", ledger, "--system",
                       f"portal={portal.url}", "--json", cwd=tmp_path)
    assert result.returncode == 5, result.stderr
    summary = last_json(result.stdout)
    assert (summary["failed"], summary["unfinished"], summary["done"]) == (2, 0, 0)
    assert re.search(r"^  failed +2  ", result.stdout, re.M), result.stdout  # the text says it under the same name

    listed = autoclerk("batches", "list", "--json", "--ledger", ledger, cwd=tmp_path)
    batch = json.loads(listed.stdout.strip().splitlines()[0])
    assert batch["id"] == summary["batch_id"] and batch["state"] == "finished" and batch["finished_at"] >= batch["created_at"]

    paused = autoclerk("batches", "pause", batch["id"], "--ledger", ledger, cwd=tmp_path)
    assert paused.returncode == 2 and paused.stdout == ""
    assert paused.stderr.strip() == (f"autoclerk: error: batch {batch['id']} is finished: every case has an outcome, "
                                     "so nothing waits to be paused")

    requeued = autoclerk("batches", "requeue", batch["id"], "--attempts", "1", "--ledger", ledger, cwd=tmp_path)
    assert requeued.returncode == 0 and "2 transaction(s) re-queued" in requeued.stdout, requeued.stderr
    reopened = json.loads(autoclerk("batches", "list", "--json", "--ledger", ledger, cwd=tmp_path).stdout.splitlines()[0])
    assert reopened["state"] == "active" and reopened["finished_at"] is None  # its failed cases went back to work


def test_a_run_missing_a_secret_or_a_system_is_refused_before_anything_is_queued(
        chromium: str, portal: PortalProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUTOCLERK_SECRET_PORTAL_PASSWORD", raising=False)
    cases = tmp_path / "cases.csv"
    generate_cases(cases, 5, seed=4)
    ledger_path = tmp_path / "ledger.db"
    result = autoclerk("run", str(EXAMPLE), "--cases", str(cases), "--ledger", f"sqlite:///{ledger_path}", "--json",
                       cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"autoclerk: error: {EXAMPLE}: workflow "), result.stderr
    for missing in ("secret 'portal_password' is not set: set AUTOCLERK_SECRET_PORTAL_PASSWORD",
                    "system 'portal' has no base URL: pass --system portal=URL", "Nothing was queued"):
        assert missing in result.stderr
    assert "Traceback" not in result.stderr and httpx.get(f"{portal.url}/api/export").json() == []
    import sqlite3

    assert not ledger_path.exists() or sqlite3.connect(ledger_path).execute("select count(*) from batches").fetchone() == (0,)


def test_a_finished_case_run_again_is_found_by_its_lookup_and_not_submitted_twice(
        chromium: str, portal: PortalProcess, tmp_path: Path) -> None:
    cases = tmp_path / "cases.csv"
    generate_cases(cases, 3, invalid_rate=0.0, seed=5)
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    run = ("run", str(EXAMPLE), "--cases", str(cases), "--ledger", ledger, "--system", f"portal={portal.url}", "--json")
    assert autoclerk(*run, cwd=tmp_path).returncode == 0
    ref = cases.read_text().splitlines()[1].split(",")[0]

    refused = autoclerk("cases", "retry", ref, "--workflow", "change-of-address", "--ledger", ledger, cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip() == f"autoclerk: error: case {ref} is done: only a failed case can be retried"
    rerun = autoclerk("cases", "rerun", ref, "--workflow", "change-of-address", "--reason", "the citizen asked twice",
                      "--ledger", ledger, cwd=tmp_path)
    assert rerun.returncode == 0 and rerun.stdout.startswith(f"case {ref} (change-of-address): sent to run again;")

    again = autoclerk(*run, cwd=tmp_path)  # the same file: the rerun case is resumed, the others were finished
    assert again.returncode == 0, again.stderr
    summary = last_json(again.stdout)
    assert (summary["done"], summary["already_finished"], summary["processed"]) == (3, 2, 1)
    export = httpx.get(f"{portal.url}/api/export").json()
    assert sorted(e["case_ref"] for e in export).count(ref) == 1, "the lookup found it: not submitted twice"
    import sqlite3

    db = sqlite3.connect(tmp_path / "ledger.db")
    state, history = db.execute("select state, history from transactions where case_ref = ?", (ref,)).fetchone()
    assert state == "done" and [a["outcome"] for a in json.loads(history)] == ["done", "done"]
    assert db.execute("select action, note from case_actions").fetchall() == [("rerun", "the citizen asked twice")]


def test_a_lookup_that_runs_always_finds_records_made_outside_this_ledger_and_submits_nothing_twice(
        chromium: str, portal: PortalProcess, tmp_path: Path) -> None:
    cases = tmp_path / "cases.csv"
    generate_cases(cases, 3, invalid_rate=0.0, seed=9, start=900)
    first = autoclerk("run", str(EXAMPLE), "--cases", str(cases), "--ledger", f"sqlite:///{tmp_path / 'first.db'}",
                      "--system", f"portal={portal.url}", "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    submitted = httpx.get(f"{portal.url}/api/export").json()
    assert len(submitted) == 3
    references = {e["case_ref"]: e["confirmation"] for e in submitted} if "confirmation" in submitted[0] else None

    # The same file on a new ledger: with the plain lookup (retry), all three would be submitted again.
    always = tmp_path / "always"
    always.mkdir()
    workflow = always_looking(always)
    explained = autoclerk("explain", str(workflow), "--cases", str(cases), "--case", "1", cwd=tmp_path)
    assert explained.returncode == 0 and "before every attempt, the lookup runs" in explained.stdout, explained.stderr
    second = autoclerk("run", str(workflow), "--cases", str(cases), "--ledger", f"sqlite:///{tmp_path / 'second.db'}",
                       "--system", f"portal={portal.url}", "--json", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    summary = last_json(second.stdout)
    assert summary["done"] == 3 and summary["failed"] == 0
    assert len(httpx.get(f"{portal.url}/api/export").json()) == 3, "every record was found: nothing submitted again"
    shown = autoclerk("batches", "show", summary["batch_id"], "--ledger", f"sqlite:///{tmp_path / 'second.db'}",
                      "--json", cwd=tmp_path)
    found = [json.loads(line) for line in shown.stdout.splitlines()[:-1]]
    assert all(case["result_ref"] and case["attempts"] == 1 for case in found)
    if references is not None:
        assert {case["case_ref"]: case["result_ref"] for case in found} == references


FINISH_EARLY = """  - wait_for: "#history"
  - if:
      visible: "#history tr[data-your-ref='{{ case.case_ref }}']"
      then:
        - extract: {locator: "#history tr[data-your-ref='{{ case.case_ref }}'] .confirmation", to: vars.found}
        - finish: {reason: the change is already recorded, output: {reference: "{{ vars.found }}"}}
"""


def test_a_workflow_that_searches_first_finishes_early_when_the_record_is_there(
        chromium: str, portal: PortalProcess, tmp_path: Path) -> None:
    cases = tmp_path / "cases.csv"
    generate_cases(cases, 4, invalid_rate=0.0, seed=13, start=950)
    rows = cases.read_text().splitlines()
    earlier = tmp_path / "earlier.csv"
    earlier.write_text("\n".join(rows[:3]) + "\n")  # the header and two cases, submitted before
    first = autoclerk("run", str(EXAMPLE), "--cases", str(earlier), "--ledger", f"sqlite:///{tmp_path / 'a.db'}",
                      "--system", f"portal={portal.url}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert len(httpx.get(f"{portal.url}/api/export").json()) == 2

    folder = tmp_path / "careful"
    folder.mkdir()
    (folder / "sign_in.yaml").write_text((EXAMPLE.parent / "sign_in.yaml").read_text())
    text = EXAMPLE.read_text().replace('  - click: "a.case-link"\n', '  - click: "a.case-link"\n' + FINISH_EARLY, 1)
    assert "finish:" in text
    workflow = folder / "change_of_address.yaml"
    workflow.write_text(text)
    assert autoclerk("validate", str(workflow), cwd=tmp_path).returncode == 0
    explained = autoclerk("explain", str(workflow), "--cases", str(cases), "--case", "1", cwd=tmp_path).stdout
    assert "finish: the case ends here, done (the change is already recorded)" in explained

    second = autoclerk("run", str(workflow), "--cases", str(cases), "--ledger", f"sqlite:///{tmp_path / 'b.db'}",
                       "--system", f"portal={portal.url}", "--json", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    summary = last_json(second.stdout)
    assert (summary["done"], summary["failed"], summary["business_exception"]) == (4, 0, 0)
    export = httpx.get(f"{portal.url}/api/export").json()
    assert len(export) == 4 and len({e["case_ref"] for e in export}) == 4, "two found and finished, two submitted"
    shown = autoclerk("batches", "show", summary["batch_id"], "--ledger", f"sqlite:///{tmp_path / 'b.db'}", "--json",
                      cwd=tmp_path)
    assert all(json.loads(line)["result_ref"] for line in shown.stdout.splitlines()[:-1])


def test_try_runs_one_case_step_by_step_stops_before_the_submit_and_records_nothing(
        chromium: str, portal: PortalProcess, tmp_path: Path) -> None:
    cases = tmp_path / "cases.csv"
    generate_cases(cases, 2, invalid_rate=0.0, seed=17, start=980)
    common = ("try", str(EXAMPLE), "--cases", str(cases), "--system", f"portal={portal.url}")
    stopped = autoclerk(*common, "--row", "1", "--out", str(tmp_path / "shots"), cwd=tmp_path)
    assert stopped.returncode == 0, stopped.stderr
    lines = stopped.stdout.splitlines()
    assert lines[0].startswith("trying change-of-address v1 on case CASE-000980; screenshots in ")
    assert any(line.strip().startswith("ok") and line.endswith("steps[1].fill") for line in lines)
    assert any(line.strip().startswith("stop") and line.endswith("steps[15].click") for line in lines)
    assert lines[-1] == "stopped before the first submitting step: nothing was submitted (--submit lets it go on)"
    shots = sorted((tmp_path / "shots").glob("*.png"))
    assert len(shots) >= 16 and shots[0].name.startswith("001-steps_0_.call")
    assert httpx.get(f"{portal.url}/api/export").json() == [] and not list(tmp_path.glob("*.db"))

    submitted = autoclerk(*common, "--case", "CASE-000981", "--submit", "--out", str(tmp_path / "shots2"), cwd=tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    assert "done: reference='" in submitted.stdout and "try recorded nothing" in submitted.stdout
    assert [e["case_ref"] for e in httpx.get(f"{portal.url}/api/export").json()] == ["CASE-000981"]

    refused = autoclerk("try", str(EXAMPLE), "--system", f"portal={portal.url}", "--submit", "--case-json", json.dumps(
        {"case_ref": "CASE-000989", "address_line1": "1 Any Road", "city": "Leeds", "postcode": "ZZ9 9XX",
         "country": "GB-ENG", "contact_method": "email", "effective_date": dt.date.today().isoformat()}), cwd=tmp_path)
    assert refused.returncode == 1 and "the case would be handed back to a person: " in refused.stdout
    assert "Postcode not recognised" in refused.stdout and "evidence: " in refused.stdout

    wrong = autoclerk("try", str(EXAMPLE), "--row", "1", cwd=tmp_path)
    assert wrong.returncode == 2 and wrong.stderr == ("autoclerk: error: --row and --case take the case from "
                                                      "--cases FILE; --case-json needs no file\n")
