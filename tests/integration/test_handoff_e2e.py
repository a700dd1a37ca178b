"""The hand-off service end to end in real Chromium: a caseworker hands off one case and a batch with good,
bad and duplicate rows, sees the rejected rows, watches the batch finish, corrects and resubmits an
exception and sees it done; an operator pauses and resumes a batch. Real bots work every case on the
demo portal, and the portal's own record shows one submission per case done.

The screenshots in ``docs/images/handoff/`` are taken here: ``AUTOCLERK_UPDATE_SCREENSHOTS=1`` writes them
there (otherwise they go to the test's temporary folder).
"""

from __future__ import annotations

import csv
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from bots import launch_options
from demo_portal import PortalProcess
from tests.conftest import ROOT
from tests.integration.handoff_rig import HandoffServer, handoff_server, sign_in

COLUMNS = ["case_ref", "address_line1", "address_line2", "city", "postcode", "country", "contact_method",
           "effective_date", "notes"]


def row(ref: str, postcode: str = "LS1 4AP", **values: str) -> dict[str, str]:
    today = time.strftime("%Y-%m-%d")
    return {"case_ref": ref, "address_line1": "12 Mill Lane", "address_line2": "", "city": "Leeds", "postcode": postcode,
            "country": "GB-ENG", "contact_method": "email", "effective_date": today, "notes": "", **values}


def write_cases(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def server(tmp_path: Path, portal: PortalProcess, chromium: str) -> Iterator[HandoffServer]:
    with handoff_server(tmp_path, portal) as running:
        yield running


@pytest.fixture
def browser(chromium: str) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, **launch_options())
        yield launched
        launched.close()


@pytest.fixture
def shots(tmp_path: Path):  # type: ignore[no-untyped-def]
    folder = ROOT / "docs" / "images" / "handoff" if os.environ.get("AUTOCLERK_UPDATE_SCREENSHOTS") else tmp_path / "shots"
    folder.mkdir(parents=True, exist_ok=True)

    def take(page: Page, name: str) -> None:
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)

    return take


def counts(page: Page) -> dict[str, int]:
    """The batch page's counts by state, as shown."""
    return {cell.get_attribute("data-state") or "": int(cell.inner_text().replace(",", ""))
            for cell in page.locator("#counts td[data-state]").all()}


def reload_until(page: Page, condition, what: str, timeout_s: float = 240) -> None:  # type: ignore[no-untyped-def]
    """Reload the page (as a person presses refresh) until ``condition(page)`` holds."""
    deadline = time.monotonic() + timeout_s
    while not condition(page):
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout_s:g} s"
        time.sleep(0.5)
        page.reload()


def test_a_caseworker_hands_off_a_batch_sees_its_rejections_and_resubmits_a_corrected_exception(
        server: HandoffServer, browser: Browser, tmp_path: Path, shots) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
    page.goto(server.url)
    expect(page).to_have_url(re.compile(r"/sign-in\?next=/$"))
    shots(page, "sign-in")
    sign_in(page, server, "alice")
    expect(page).to_have_url(f"{server.url}/hand-off")
    shots(page, "hand-off")

    # One case through the form generated from the input schema: a mistake is shown beside its field.
    page.get_by_role("link", name="Hand off one case to change-of-address").click()
    page.get_by_label("Case reference").fill("CASE-100001")
    page.get_by_label("Address line 1").fill("3 Church Road")
    page.get_by_label("Town or city").fill("York")
    page.get_by_label("Postcode").fill("not a postcode")
    page.get_by_label("England", exact=True).check()
    page.get_by_label("Post", exact=True).check()
    today = time.localtime()
    page.get_by_label("Day").fill(str(today.tm_mday))
    page.get_by_label("Month").fill(str(today.tm_mon))
    page.get_by_label("Year").fill(str(today.tm_year))
    page.get_by_role("button", name="Hand off the case").click()
    expect(page.locator(".govuk-error-summary")).to_contain_text("Enter a postcode in capitals like SW1A 1AA")
    expect(page.locator("#postcode-error")).to_contain_text("Enter a postcode in capitals like SW1A 1AA")
    shots(page, "hand-off-one-case-error")
    page.get_by_label("Postcode").fill("YO1 7HH")
    page.get_by_role("button", name="Hand off the case").click()
    expect(page.locator(".govuk-notification-banner")).to_contain_text("The case was handed off")
    assert "?" not in page.url, "the banner lives in the session, not the address"
    page.reload()
    expect(page.locator(".govuk-notification-banner")).to_have_count(0)  # shown once: gone on refresh

    # A batch with good rows, rows that break rules, a repeated row and a case handed off a moment ago.
    cases = write_cases(tmp_path / "march <batch>.csv", [
        row("CASE-100002"), row("CASE-100003", city="Bristol", postcode="BS1 4DJ"),
        row("CASE-100004", postcode="ZZ9 9XX"),             # the portal does not know ZZ: back to a person
        row("CASE-100005", postcode="ZZ8 8XX"),             # likewise, to be done by hand
        row("BAD-1"),                                       # breaks the reference pattern
        row("CASE-100006", country="FR"),                   # not one of the countries
        row("CASE-100002"),                                 # repeats row 1
        row("CASE-100001", postcode="YO1 7HH", city="York", address_line1="3 Church Road"),  # handed off already
    ])
    page.goto(f"{server.url}/hand-off/change-of-address/batch")
    shots(page, "upload-batch")
    page.set_input_files("#file", str(cases))
    page.get_by_role("button", name="Upload and hand off").click()
    expect(page.locator(".govuk-notification-banner")).to_contain_text("The batch was handed off")
    rejected = {int(r.locator("td").nth(0).inner_text()): r.locator("td").nth(2).inner_text()
                for r in page.locator("#rejections tbody tr").all()}
    assert set(rejected) == {5, 6, 7, 8}, rejected
    assert rejected[5] == "Enter a case reference like CASE-000123", rejected
    assert rejected[6].startswith("Country must be one of England (GB-ENG), Scotland (GB-SCT)"), rejected
    fields = [r.locator("td").nth(1).inner_text() for r in page.locator("#rejections tbody tr").all()]
    assert fields[:2] == ["Case reference", "Country"], "the field's label, never its key"
    assert "duplicate case reference CASE-100002" in rejected[7]
    assert "CASE-100001" in rejected[8] and "already handed off" in rejected[8] and "not queued again" in rejected[8]
    expect(page.locator("h1")).to_contain_text("Batch")
    assert "march &lt;batch&gt;.csv" in page.content() or "march <batch>.csv" in page.inner_text("main")

    # Watch it finish: four cases, two done and two handed back to a person.
    reload_until(page, lambda p: counts(p)["done"] + counts(p)["business_exception"] == 4, "the batch finishing")
    assert counts(page)["done"] == 2 and counts(page)["business_exception"] == 2 and counts(page)["failed"] == 0
    batch_id = page.url.split("/batches/")[1].split("?")[0]
    first = server.wait_for_batch(batch_id)
    assert first["state"] == "finished" and first["finished_at"], "every case has an outcome: the batch has finished"
    expect(page.locator("main")).to_contain_text("Finished")
    # Its reconciliation: 8 rows read = 4 queued + 4 not queued; 4 queued = 2 done + 2 handed back.
    figures = {cell.get_attribute("data-figure"): cell.inner_text() for cell in page.locator("#reconciliation td[data-figure]").all()}
    assert figures == {"rows_read": "8", "accepted": "4", "rejected": "4"}, figures
    assert page.locator('#reconciliation [data-rejected="invalid"]').inner_text() == "2"
    assert page.locator('#reconciliation [data-rejected="conflict"]').inner_text() == "1"
    expect(page.locator("#reconciliation-result")).to_contain_text("Both sums hold")
    shots(page, "batch")
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV (for a spreadsheet)").click()
    with open(download.value.path(), encoding="utf-8") as handle:
        results = list(csv.DictReader(handle))
    assert sorted(r["case_ref"] for r in results) == ["CASE-100002", "CASE-100003", "CASE-100004", "CASE-100005"]
    assert {r["case_ref"]: r["state"] for r in results}["CASE-100004"] == "business_exception"
    assert all(r["error_message"] and r["error_detail"].startswith("step ") for r in results if r["state"] != "done")

    # The exceptions inbox holds the two refused cases; the first is corrected and resubmitted.
    page.get_by_role("link", name="Exceptions").click()
    expect(page.locator("#exceptions tbody tr")).to_have_count(2)
    assert "Postcode not recognised" in page.inner_text("#exceptions")
    reasons = [r.locator("td").nth(2).inner_text() for r in page.locator("#exceptions tbody tr").all()]
    assert all(reason.startswith("Postcode not recognised") for reason in reasons), (
        "the portal's own message, without its error summary's heading", reasons)
    expect(page.locator("#exceptions").get_by_role("link", name="Screenshot of case CASE-100004")).to_be_visible()
    shots(page, "exceptions")
    page.get_by_role("link", name="CASE-100004", exact=True).click()
    expect(page.locator("h1")).to_have_text("Deal with case CASE-100004")
    expect(page.get_by_label("Postcode")).to_have_value("ZZ9 9XX")
    page.locator("summary", has_text="See what the bot saw").click()
    image = page.locator(".govuk-details__text img")
    expect(image).to_be_visible()
    assert image.evaluate("img => img.naturalWidth") > 100, "the screenshot of the failing step is shown"
    expect(page.locator(".govuk-details__text figcaption")).to_contain_text("Attempt 1: the page when the case stopped.")
    shots(page, "resolve")
    page.get_by_label("Postcode").fill("LS2 9JT")
    page.get_by_role("button", name="Send the corrected case").click()
    expect(page.locator(".govuk-notification-banner")).to_contain_text("sent back to the bots")
    reload_until(page, lambda p: "Done" in p.locator("main .govuk-tag").first.inner_text(), "the resubmitted case being done")
    again = server.wait_for_batch(batch_id)  # the resubmit reopened the batch; its case done, it finished anew
    assert again["state"] == "finished" and again["finished_at"] > first["finished_at"], (first, again)
    assert "LS2 9JT" in page.inner_text("main")
    expect(page.locator("#actions")).to_contain_text("alice")
    expect(page.locator("#actions")).to_contain_text("resubmitted")
    reference = page.locator(".govuk-summary-list__row", has_text="Reference from the system").locator("dd").inner_text()
    assert reference.strip() and reference.strip() != "None yet", "the reference the portal returned is shown"
    expect(page.locator("#attempts")).to_contain_text("Postcode not recognised")
    expect(page.locator("#attempts [data-detail]")).to_have_count(0)  # a caseworker reads the message, not the detail
    expect(page.locator("#evidence + figure figcaption")).to_contain_text(
        "the case's record in the target system, as the bot checked it.")  # the newest screenshot: its check
    shots(page, "case")
    operator = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
    sign_in(operator, server, "olga")
    operator.goto(page.url.split("?")[0])
    expect(operator.locator("#attempts [data-detail]").first).to_contain_text("step ")
    operator.context.close()

    # The second is done by hand, with a note; the inbox is then empty.
    page.goto(f"{server.url}/exceptions")
    page.get_by_role("link", name="CASE-100005", exact=True).click()
    page.get_by_role("button", name="Mark as done by hand").click()
    expect(page.locator(".govuk-error-summary")).to_contain_text("Say what you did")
    page.get_by_label("What you did").fill("Phoned the customer; changed by hand, reference CNF-MANUAL-1")
    page.get_by_role("button", name="Mark as done by hand").click()
    expect(page.locator(".govuk-notification-banner")).to_contain_text("done by hand")
    page.goto(f"{server.url}/exceptions")
    expect(page.locator("#no-exceptions")).to_be_visible()

    # The portal's own record: exactly one submission per case done by a bot, none for the others.
    submitted = [s["case_ref"] for s in server.submissions()]
    assert sorted(submitted) == ["CASE-100001", "CASE-100002", "CASE-100003", "CASE-100004"]


def test_an_operator_pauses_and_resumes_a_batch_and_nothing_runs_while_it_is_paused(
        server: HandoffServer, browser: Browser, tmp_path: Path, shots) -> None:  # type: ignore[no-untyped-def]
    cases = write_cases(tmp_path / "large.csv", [row(f"CASE-2{n:05d}") for n in range(40)])
    with server.api("alice") as api, open(cases, "rb") as fh:
        receipt = api.post("/api/batches", params={"workflow": "change-of-address"}, files={"file": fh}).json()
    assert receipt["accepted"] == 40 and receipt["rejected"] == []
    batch_id = receipt["batch_id"]

    page = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
    sign_in(page, server, "olga")
    expect(page).to_have_url(f"{server.url}/operations")
    page.goto(f"{server.url}/batches/{batch_id}")
    page.get_by_role("button", name="Pause").click()
    expect(page.locator(".govuk-notification-banner")).to_contain_text("Batch paused")
    held = int(re.search(r"paused: ([\d,]+) case", page.inner_text(".govuk-notification-banner")).group(1))  # type: ignore[union-attr]
    assert held > 0, "the pause held cases that were still waiting"
    # Running cases finish; the held ones stay held.
    reload_until(page, lambda p: counts(p).get("in_progress", 0) == 0, "the running cases finishing", 120)
    shown = counts(page)
    assert shown["paused"] == held and shown["done"] == 40 - held, shown
    shots(page, "batch-paused")

    page.get_by_role("button", name="Resume").click()
    expect(page.locator(".govuk-notification-banner")).to_contain_text("Batch resumed")
    status = server.wait_for_batch(batch_id)
    assert status["counts"]["done"] == 40 and status["state"] == "finished" and status["finished_at"] >= status["created_at"]
    submitted = [s["case_ref"] for s in server.submissions()]
    assert len(submitted) == len(set(submitted)) == 40, "every case submitted exactly once"

    # A finished batch says so, and offers nothing to pause, resume or cancel: not on its page, not in the API.
    page.goto(f"{server.url}/batches/{batch_id}")
    expect(page.locator("main")).to_contain_text("Finished")
    for button in ("Pause", "Resume", "Cancel the waiting cases"):
        expect(page.get_by_role("button", name=button)).to_have_count(0)
    shots(page, "batch-finished")

    # An operator runs one finished case again, with a reason: its lookup finds it, so nothing is submitted twice.
    with server.api("olga") as api:
        first_case = api.get(f"/api/batches/{batch_id}/cases", params={"limit": 1}).json()[0]
        no_reason = api.post(f"/api/cases/{first_case['id']}/rerun", json={})
        assert no_reason.status_code == 422 and "reason is required" in no_reason.text
        refused = api.post(f"/api/cases/{first_case['id']}/cancel", json={})
        assert refused.status_code == 409 and "only a waiting case can be cancelled" in refused.json()["detail"]
    page.goto(f"{server.url}/cases/{first_case['id']}")
    page.get_by_role("button", name="Run this case again").click()
    expect(page.locator(".govuk-error-summary")).to_contain_text("Say why this case must run again")
    page.get_by_label("Why must this case run again?").fill("The citizen says the letter never came")
    page.get_by_role("button", name="Run this case again").click()
    expect(page.locator(".govuk-notification-banner")).to_contain_text("The case will run again")
    with server.api("olga") as api:
        ended = server.wait_for_case(api, first_case["id"])
    assert ended["state"] == "done" and ended["attempts"] == 2 and ended["actions"][-1]["action"] == "rerun"
    page.reload()
    expect(page.locator("#actions")).to_contain_text("The citizen says the letter never came")
    shots(page, "case-run-again")
    again = [s["case_ref"] for s in server.submissions()]
    assert again.count(first_case["case_ref"]) == 1, "the lookup found the earlier submission"
    with server.api("olga") as api:
        refused = api.post(f"/api/batches/{batch_id}/pause")
        assert refused.status_code == 409 and "is finished" in refused.json()["detail"], refused.text
        assert api.get(f"/api/batches/{batch_id}").json()["state"] == "finished"

    page.goto(f"{server.url}/operations")
    expect(page.locator("#workers")).to_contain_text("embedded")
    assert "40 of 10,000,000" in page.inner_text("main")
    shots(page, "operations")
