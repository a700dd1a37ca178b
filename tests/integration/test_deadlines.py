"""Deadlines and a maintenance window end to end: real RabbitMQ, a real worker process, the hand-off service,
real Chromium and the demo portal.

A batch is handed off through the page with a due date in words a caseworker writes (after a refused one),
and through the API with ``within`` and per-case ``_deadline`` columns (one past, one unreadable). The
portal is in a maintenance window set on the worker: no case is claimed, none spends an attempt, and the
pages, the API and the worker's ``/metrics`` show what is at risk and breached. When the window ends every
case runs once; finished cases are no longer counted.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from bots import launch_options
from demo_portal import PortalProcess, generate_cases
from orchestrator import Ledger
from tests.conftest import ROOT, wait_for_consumers
from tests.integration.handoff_rig import FAST, HandoffServer, handoff_server, sign_in
from tests.integration.test_preflight_broker import free_port, wait_until

WINDOW_S = 50
"""How long the portal's maintenance window lasts from the worker's start: enough to hand off and look."""


@pytest.fixture
def server(tmp_path: Path, portal: PortalProcess, rabbitmq: str, chromium: str) -> Iterator[HandoffServer]:
    with handoff_server(tmp_path, portal, env={"AUTOCLERK_BROKER_URL": rabbitmq}) as running:
        yield running


def with_deadlines(cases: Path, deadlines: list[str]) -> bytes:
    with cases.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*rows[0].keys(), "_deadline"], lineterminator="\n")
    writer.writeheader()
    for row, deadline in zip(rows, deadlines):
        writer.writerow({**row, "_deadline": deadline})
    return out.getvalue().encode()


def test_a_maintenance_window_holds_cases_without_spending_attempts_while_deadlines_are_shown_and_alerted(
        server: HandoffServer, rabbitmq: str, portal: PortalProcess, chromium: str, tmp_path: Path) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    opens, closes = now - dt.timedelta(seconds=60), now + dt.timedelta(seconds=WINDOW_S)
    window = f"{opens:%H:%M:%S}-{closes:%H:%M:%S}"
    metrics_port = free_port()
    env = {**os.environ, **FAST, "AUTOCLERK_TIMEZONE": "UTC", "AUTOCLERK_SYSTEM_MAINTENANCE": f'{{"portal": ["{window}"]}}',
           "AUTOCLERK_ARTIFACTS_DIR": str(tmp_path / "worker-artifacts")}
    log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 - closed below
    worker = subprocess.Popen([sys.executable, "-m", "orchestrator", "worker", "--broker", rabbitmq, "--ledger",
                               server.ledger_url, "--system", f"portal={portal.url}", "--metrics-port", str(metrics_port)],
                              cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=log)
    ledger = Ledger(server.ledger_url)
    try:
        wait_for_consumers(rabbitmq, 1)
        cases = tmp_path / "cases.csv"
        generate_cases(cases, 4, seed=5, start=800)
        past = (now - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
        body = with_deadlines(cases, [past, "", "", "in a bit"])
        with server.api("alice") as api:
            refused = api.post("/api/batches", params={"workflow": "change-of-address", "within": "soon"},
                               files={"file": ("cases.csv", body, "text/csv")})
            assert refused.status_code == 422 and "such as 4h, 3d or 2wd (you entered 'soon')" in refused.json()["detail"]
            answer = api.post("/api/batches", params={"workflow": "change-of-address", "within": "2h"},
                              files={"file": ("cases.csv", body, "text/csv")})
            assert answer.status_code == 201, answer.text
            receipt = answer.json()
        assert receipt["accepted"] == 3 and len(receipt["rejected"]) == 1
        batch_id = receipt["batch_id"]
        rejected = ledger.reports.rejections(batch_id)
        assert [(r["row"], r["field"]) for r in rejected] == [(4, "_deadline")]

        # In the window: the worker received the cases and kept them waiting, unclaimed, with no attempt spent.
        wait_until(lambda: ledger.reports.counts(batch_id)["retry_scheduled"] == 3, "the cases being held for the window")
        for case in ledger.cases.list(batch_id):
            assert case["attempts"] == 0 and case["error_class"] == "MaintenanceWindow", case
            assert case["error_message"].startswith("The target system portal is in its maintenance window until")
        assert server.submissions() == []
        with server.api("olga") as api:
            assert api.get("/api/operations").json()["deadlines"] == {"change-of-address": {"at_risk": 2, "breached": 1}}
        scrape = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=30).text
        assert 'autoclerk_cases_breached{workflow="change-of-address"} 1.0' in scrape
        assert 'autoclerk_cases_at_risk{workflow="change-of-address"} 2.0' in scrape

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, **launch_options())
            page = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
            sign_in(page, server, "olga")
            page.goto(f"{server.url}/operations")
            row = page.locator('#deadlines [data-workflow="change-of-address"]')
            expect(row.locator('[data-figure="at_risk"]')).to_have_text("2")
            expect(row.locator('[data-figure="breached"]')).to_have_text("1")
            page.goto(f"{server.url}/batches/{batch_id}")
            expect(page.locator("#breached")).to_contain_text("1 unfinished case(s) are past their deadline")
            expect(page.locator("#cases [data-breached]")).to_have_count(1)
            expect(page.locator("#cases")).to_contain_text("maintenance window")
            if os.environ.get("AUTOCLERK_UPDATE_SCREENSHOTS"):
                page.screenshot(path=str(ROOT / "docs" / "images" / "handoff" / "batch-deadlines.png"), full_page=True)

            # The page's form: a due date the caseworker writes, after one that cannot be read.
            sign_in(page, server, "alice")
            more = tmp_path / "more.csv"
            generate_cases(more, 1, seed=6, start=900)
            page.goto(f"{server.url}/hand-off/change-of-address/batch")
            page.get_by_label("Or due within").fill("three days")
            page.set_input_files("#file", str(more))
            page.get_by_role("button", name="Upload and hand off").click()
            expect(page.locator(".govuk-error-summary")).to_contain_text("such as 4h, 3d or 2wd (you entered 'three days')")
            page.get_by_label("Due by").fill("2026-12-24 17:00")
            page.get_by_label("Or due within").fill("")
            page.set_input_files("#file", str(more))
            page.get_by_role("button", name="Upload and hand off").click()
            expect(page.locator("#deadlines")).to_contain_text("24 December 2026, 17:00:00 UTC")
            if os.environ.get("AUTOCLERK_UPDATE_SCREENSHOTS"):
                page.goto(f"{server.url}/hand-off/change-of-address/batch")
                page.screenshot(path=str(ROOT / "docs" / "images" / "handoff" / "hand-off-due-date.png"), full_page=True)
            browser.close()
        form_batch = ledger.batches.recent(1)[0]
        assert form_batch["deadline"] == dt.datetime(2026, 12, 24, 17, 0, tzinfo=dt.timezone.utc).timestamp()

        # The window ends: every case runs, each with its first attempt, and nothing is at risk any more.
        server.wait_for_batch(batch_id, timeout_s=WINDOW_S + 180)
        assert dt.datetime.now(dt.timezone.utc) >= closes
        assert {(c["state"], c["attempts"]) for c in ledger.cases.list(batch_id)} == {("done", 1)}
        server.wait_for_batch(form_batch["id"], timeout_s=120)
        assert len(server.submissions()) == 4
        with server.api("olga") as api:
            assert api.get("/api/operations").json()["deadlines"] == {}
    finally:
        ledger.close()
        worker.terminate()
        worker.wait(timeout=60)
        log.close()
