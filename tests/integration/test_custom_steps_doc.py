"""The custom step of ``docs/custom-steps.md``, built from the page, runs in Chromium against the demo portal
as the page says, and types what it was given (the portal finds the case only when every key arrived)."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest

from demo_portal import PortalProcess
from demo_portal.records import find_case
from tests.conftest import autoclerk
from tests.test_docs_custom_steps import WORKFLOW, block_after, install_example


def test_the_pages_workflow_runs_its_custom_step_in_chromium_and_reports_each_holder(
        chromium: str, portal: PortalProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUTOCLERK_ENV_PORTAL_USER", raising=False)
    work, env = install_example(tmp_path)
    commands = block_after("Run it against the demo portal").splitlines()
    cases = next(line for line in commands if line.startswith("printf "))
    subprocess.run(["bash", "-c", cases], cwd=work, check=True)
    (work / "cases.csv").write_text((work / "cases.csv").read_text() + "CASE-004711\n")  # and a second case

    run_line = next(line for line in commands if line.startswith("autoclerk run "))
    args = [f"portal={portal.url}" if arg.startswith("portal=") else arg
            for arg in shlex.split(run_line.removeprefix("autoclerk "))]
    assert args[:2] == ["run", WORKFLOW]
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    run = autoclerk(*args, "--ledger", ledger, "--json", cwd=work, env=env)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout.splitlines()[-1])
    assert (summary["done"], summary["failed"], summary["business_exception"]) == (2, 0, 0)

    shown = autoclerk("batches", "show", summary["batch_id"], "--json", "--ledger", ledger, cwd=work, env=env)
    cases_shown = [json.loads(line) for line in shown.stdout.splitlines() if '"case_ref"' in line]
    holders = {case["case_ref"]: case["output"]["holder"] for case in cases_shown}
    assert holders == {ref: find_case(ref).holder for ref in ("CASE-000123", "CASE-004711")}  # type: ignore[union-attr]
