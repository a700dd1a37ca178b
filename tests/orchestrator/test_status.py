"""Progress toward the target from the ledger: counts, the recent rate, the projection, and the command."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator import Ledger, Outcome
from orchestrator.queue import progress_report


def finish(ledger: Ledger, refs: list[str], state: str, verification: str | None = None) -> str:
    batch = ledger.batches.create("wf", "d1", "cases.csv")
    ids, _ = ledger.batches.add_cases(batch, "wf", 1, "d1", 3, [(r, {"case_ref": r}) for r in refs])
    claims = ledger.transactions.claim_many(ids, "w1", lease_s=60)
    assert ledger.transactions.finish_many([Outcome(c, state, verification=verification) for c in claims]) == []
    return batch


def test_progress_counts_the_whole_ledger_and_the_done_ones_in_the_recent_window(ledger: Ledger) -> None:
    started = time.time()
    done_batch = finish(ledger, [f"D{i}" for i in range(30)], "done", "verified")
    finish(ledger, [f"U{i}" for i in range(4)], "done", "unverified")  # submitted, not checked: not counted
    finish(ledger, ["X1", "X2"], "business_exception")
    queued = ledger.batches.create("wf", "d1", "more.csv")
    ledger.batches.add_cases(queued, "wf", 1, "d1", 3, [("Q1", {}), ("Q2", {})])

    progress = ledger.reports.progress(600)
    assert progress["counts"]["done"] == 34 and progress["counts"]["business_exception"] == 2
    assert progress["counts"]["queued"] == 2
    assert (progress["done_recent"], progress["verified_recent"]) == (34, 30)
    assert progress["window_elapsed_s"] == 60  # a young ledger: its own age, not 600 s, but at least a minute
    assert time.time() - started < 60

    later = ledger.reports.progress(600, now=time.time() + 3600)  # an hour on, nothing recent
    assert later["done_recent"] == later["verified_recent"] == 0 and later["counts"]["done"] == 34

    report = progress_report(ledger, target=1000, window_s=600, limit=10)
    assert report["completed"] == 30 and report["remaining"] == 970 and report["per_second"] > 0
    assert (report["verified"], report["unverified"]) == (30, 4)
    assert report["per_second"] == pytest.approx(30 / progress["window_elapsed_s"], rel=0.05)
    assert report["projected_completion"] is not None
    assert [b["id"] for b in report["batches"]][-1] == done_batch
    assert report["batches"][0]["counts"]["queued"] == 2 and report["batches"][0]["finished"] == 0


def test_the_rate_window_ignores_older_events(ledger: Ledger) -> None:
    finish(ledger, [f"OLD{i}" for i in range(20)], "done")
    cut = time.time()
    with ledger.engine.begin() as conn:  # age those 20: they finished two hours ago
        conn.exec_driver_sql("UPDATE transaction_events SET at = at - 7200")
    finish(ledger, [f"NEW{i}" for i in range(5)], "done")
    progress = ledger.reports.progress(600)
    assert progress["counts"]["done"] == 25 and progress["done_recent"] == 5
    assert progress["window_elapsed_s"] == pytest.approx(600, abs=2)
    assert cut - 7200 < time.time() - 600  # the old ones really lie outside the window


def autoclerk(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], capture_output=True, text=True, timeout=60)


def test_status_prints_the_target_bar_and_ends_with_one_json_object(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = Ledger(url)
    try:
        batch = finish(ledger, [f"D{i}" for i in range(8)], "done", "verified")
        finish(ledger, ["U1"], "done")  # a workflow without verify: submitted, not verified, not counted
    finally:
        ledger.close()
    shown = autoclerk("status", "--ledger", url, "--target", "20")
    assert shown.returncode == 0, shown.stderr
    assert "8 of 20 verified (40.00%)" in shown.stdout and batch in shown.stdout
    assert "submitted, not verified 1 (not counted)" in shown.stdout
    as_json = autoclerk("status", "--ledger", url, "--json")
    report = json.loads(as_json.stdout.strip().splitlines()[-1])
    assert {"target", "completed", "per_second", "projected_completion", "batches"} <= report.keys()
    assert report["target"] == 10_000_000 and report["completed"] == 8
    assert report["batches"][-1]["counts"]["done"] == 8
    wrong = autoclerk("status", "--ledger", url, "--target", "0")
    assert wrong.returncode == 2 and len(wrong.stderr.strip().splitlines()) == 1 and "--target" in wrong.stderr


HEAVY = ("playwright", "celery", "kombu", "fastapi", "uvicorn", "bots.engine", "workflows.loader", "orchestrator.web")
"""What ``autoclerk status`` has no use for: the browser, the broker, the web service, the workflow parser."""


def test_status_loads_neither_the_browser_nor_the_broker_nor_the_web_service(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = Ledger(url)
    try:
        finish(ledger, ["D1", "D2"], "done", "verified")
    finally:
        ledger.close()
    probe = ("import sys\nfrom orchestrator.cli import main\ntry:\n"
             "    main(['status', '--ledger', sys.argv[1], '--json'])\n"
             "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
             f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    shown = subprocess.run([sys.executable, "-c", probe, url], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    *report, loaded = shown.stdout.strip().splitlines()
    assert json.loads(report[-1])["completed"] == 2  # it did its work...
    assert loaded == "[]"  # ...without importing any of them (each command's module is imported when it runs)
