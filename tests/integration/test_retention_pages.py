"""Erasure and pruning seen on the service's pages in real Chromium: real bots work a batch on the demo portal
(one case handed back with a screenshot), an operator erases that case's data from the command line and its
page shows the outcome without the data or the screenshot; the batch is then pruned to an archive, and the
batch page and the operations page show the same figures as before.

``AUTOCLERK_UPDATE_SCREENSHOTS=1`` writes the screenshots into ``docs/images/retention/``.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from bots import evidence_folder, launch_options
from demo_portal import PortalProcess
from orchestrator import Ledger
from tests.conftest import ROOT, autoclerk
from tests.integration.handoff_rig import HandoffServer, handoff_server, sign_in
from tests.integration.test_handoff_e2e import COLUMNS, counts, row

WORKFLOW = "change-of-address"


@pytest.fixture
def server(tmp_path: Path, portal: PortalProcess, chromium: str) -> Iterator[HandoffServer]:
    with handoff_server(tmp_path, portal) as running:
        yield running


@pytest.fixture
def page(chromium: str) -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser: Browser = playwright.chromium.launch(executable_path=chromium, **launch_options())
        yield browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
        browser.close()


def shot(page: Page, name: str, tmp_path: Path) -> None:
    folder = ROOT / "docs" / "images" / "retention" if os.environ.get("AUTOCLERK_UPDATE_SCREENSHOTS") else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def operations_figures(page: Page) -> tuple[str, str]:
    """The operations page's target line and its batches table, as shown."""
    done = page.locator(".govuk-summary-list__row", has_text="Done and checked").locator("dd").inner_text()
    return done.strip(), page.locator("#batches tbody").inner_text()


def test_an_erased_case_keeps_its_outcome_and_a_pruned_batch_keeps_its_figures_on_every_page(
        server: HandoffServer, page: Page, tmp_path: Path) -> None:
    cases = tmp_path / "cases.csv"
    with open(cases, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows([row("CASE-100701"), row("CASE-100702"),
                          row("CASE-100703", postcode="ZZ9 9XX", address_line1="7 Secret Gardens")])
    with server.api("alice") as api:
        receipt = api.post("/api/batches", params={"workflow": WORKFLOW},
                           files={"file": ("cases.csv", cases.read_bytes(), "text/csv")}).json()
    batch_id = receipt["batch_id"]
    server.wait_for_batch(batch_id)
    env = {"AUTOCLERK_ARTIFACTS_DIR": str(server.artifacts)}
    folder = evidence_folder(server.artifacts, WORKFLOW, "CASE-100703")
    assert any(folder.rglob("*.png")), "the handed-back case has its screenshot"

    erased = autoclerk("cases", "erase", "CASE-100703", "--workflow", WORKFLOW, "--reason", "erasure request 2026-41",
                       "--ledger", server.ledger_url, env=env)
    assert erased.stdout == "case CASE-100703 (change-of-address): its personal data is erased; its outcome is kept\n"
    assert not folder.exists()
    ledger = Ledger(server.ledger_url)
    try:
        tx = ledger.cases.by_ref(WORKFLOW, "CASE-100703")["id"]  # type: ignore[index]
    finally:
        ledger.close()

    sign_in(page, server, "olga")
    page.goto(f"{server.url}/cases/{tx}")
    expect(page.locator("#actions")).to_contain_text("erasure request 2026-41")
    expect(page.locator("#actions")).to_contain_text("erased")
    main = page.inner_text("main")
    assert "Outcome\tNeeds a person" in main and "Attempts\t1 of" in main, main
    assert "7 Secret Gardens" not in main and "ZZ9 9XX" not in main and "Postcode not recognised" not in main
    expect(page.locator("main img")).to_have_count(0)
    expect(page.locator("#erased")).to_contain_text("personal data was erased on")
    expect(page.get_by_role("button", name="Run this case again")).to_have_count(0)  # its data is gone
    shot(page, "erased-case", tmp_path)

    ledger = Ledger(server.ledger_url)
    try:
        assert ledger.cases.resolve(tx, "closed", "alice", None)  # dealt with: now it may be pruned too
    finally:
        ledger.close()
    page.goto(f"{server.url}/batches/{batch_id}")
    before = (counts(page), page.locator("#reconciliation").inner_text())
    page.goto(f"{server.url}/operations")
    ops_before = operations_figures(page)

    future = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S")
    pruned = autoclerk("ledger", "prune", "--finished-before", future, "--archive", str(tmp_path / "archive"),
                       "--ledger", server.ledger_url, "--json", env=env)
    assert pruned.returncode == 0, pruned.stderr
    summary = json.loads(pruned.stdout)
    assert summary["cases"] == 3
    with gzip.open(summary["archive"], "rt", encoding="utf-8") as handle:
        archived = [json.loads(line) for line in handle]
    erased_row = next(r["row"] for r in archived if r["table"] == "transactions" and r["row"]["case_ref"] == "CASE-100703")
    assert erased_row["payload"] == {} and erased_row["resolution"] == "closed"

    page.goto(f"{server.url}/batches/{batch_id}")
    assert (counts(page), page.locator("#reconciliation").inner_text()) == before
    expect(page.locator("#reconciliation-result")).to_contain_text("Both sums hold")
    expect(page.locator("#pruned")).to_contain_text("3 of this batch's cases were moved to an archive")
    shot(page, "batch-after-prune", tmp_path)
    page.goto(f"{server.url}/operations")
    assert operations_figures(page) == ops_before
