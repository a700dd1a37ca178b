"""The CLI end to end: the demo, a second run on the same ledger, RabbitMQ with two workers, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from demo_portal import PortalProcess, generate_cases
from tests.conftest import EXAMPLE, autoclerk, wait_for_consumers


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
    import sqlite3

    handed_back = sqlite3.connect(tmp_path / "ledger.db").execute(
        "select error_message from transactions where state='business_exception'").fetchall()
    assert len(handed_back) == invalid
    assert all("Postcode not recognised" in m or "within the last 30 days" in m for (m,) in handed_back)

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
    (("run", str(EXAMPLE), "--cases", "binary.csv"), "autoclerk: error: binary.csv: is not UTF-8 text"),
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
