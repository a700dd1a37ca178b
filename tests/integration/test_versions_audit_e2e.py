"""Workflow versions and the audit trail end to end: the service with real bots on the demo portal and
real Chromium. A batch handed off on publish 2 is paused, an author rolls the workflow back to publish 1 on
its versions page (after reading the diff), and the resumed batch still runs publish 2's source while a new
hand-off runs publish 1's. An operator then reads every one of these actions, and a failed sign-in, on the
audit page and downloads it.

Screenshots (``AUTOCLERK_UPDATE_SCREENSHOTS=1`` writes them to ``docs/images/handoff/``): the versions
page with its diff, and the audit page.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from demo_portal import PortalProcess
from tests.conftest import EXAMPLE
from tests.integration.handoff_rig import HandoffServer, handoff_server, sign_in
from tests.integration.test_handoff_e2e import browser, row, shots, write_cases  # noqa: F401 (fixtures)

HANDED_BACK = "Version 2 hands every case back"


def version_2() -> str:
    """The example workflow with every case handed back at once (so which version ran is plain to see)."""
    source = EXAMPLE.read_text().replace("\nversion: 1\n", "\nversion: 2\n")
    start, end = source.index("\nsteps:\n"), source.index("# Run before any retry")
    return f'{source[:start]}\nsteps:\n  - fail: {{message: "{HANDED_BACK}"}}\n\n{source[end:]}'


@pytest.fixture
def server(tmp_path: Path, portal: PortalProcess, chromium: str) -> Iterator[HandoffServer]:
    with handoff_server(tmp_path, portal) as running:
        yield running


def test_a_batch_keeps_its_version_across_a_rollback_and_every_action_is_in_the_audit_trail(
        server: HandoffServer, browser: Browser, tmp_path: Path, shots) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    with server.api("arthur") as api:
        published = api.post("/api/workflows", data={"main": "change_of_address.yaml"}, files=[
            ("files", ("change_of_address.yaml", version_2().encode(), "application/yaml")),
            ("files", ("sign_in.yaml", (EXAMPLE.parent / "sign_in.yaml").read_bytes(), "application/yaml"))])
        assert published.status_code == 201, published.text
        assert (published.json()["number"], published.json()["version"]) == (2, 2)

    cases = write_cases(tmp_path / "on-2.csv", [row(f"CASE-3{n:05d}") for n in range(8)])
    with server.api("alice") as api, open(cases, "rb") as fh:
        on_2 = api.post("/api/batches", params={"workflow": "change-of-address"}, files={"file": fh}).json()["batch_id"]
    with server.api("olga") as api:
        paused = api.post(f"/api/batches/{on_2}/pause")
        assert paused.status_code == 200 and paused.json()["counts"]["paused"] > 0, "the pause held cases still waiting"

    # The author reads the diff and rolls back to publish 1, with a reason, on the versions page.
    page = browser.new_context(viewport={"width": 1100, "height": 1000}).new_page()
    sign_in(page, server, "arthur")
    page.get_by_role("link", name="change-of-address").click()
    expect(page.locator("#versions tbody tr")).to_have_count(2)
    page.get_by_role("button", name="Show the differences").click()
    expect(page.locator("#diff .autoclerk-diff--removed").first).to_be_visible()
    expect(page.locator("#diff")).to_contain_text(f'+  - fail: {{message: "{HANDED_BACK}"}}')
    expect(page.locator("#diff")).not_to_contain_text("autoclerk_bundle")  # the YAML as written, not the stored bundle
    shots(page, "workflow-versions")
    page.get_by_role("button", name="Roll back").click()
    expect(page.locator(".govuk-error-summary")).to_contain_text("Say why you are rolling back")
    page.get_by_label("Why are you rolling back?").fill("Publish 2 hands every case back")
    page.get_by_role("button", name="Roll back").click()
    expect(page.locator(".govuk-notification-banner")).to_contain_text("Rolled back: publish 3 is in use now.")
    expect(page.locator("#versions tbody tr").first).to_contain_text("Rollback to publish 1: Publish 2 hands every case back")

    # The paused batch, resumed, still runs publish 2's source; a new hand-off runs publish 1's.
    with server.api("olga") as api:
        assert api.post(f"/api/batches/{on_2}/resume").status_code == 200
    status = server.wait_for_batch(on_2)
    assert status["counts"]["business_exception"] == 8, status
    with server.api("olga") as api:
        handed_back = api.get(f"/api/batches/{on_2}/cases", params={"state": "business_exception"}).json()
    assert {c["error_message"] for c in handed_back} == {HANDED_BACK}
    again = write_cases(tmp_path / "on-1.csv", [row(f"CASE-4{n:05d}") for n in range(2)])
    with server.api("alice") as api, open(again, "rb") as fh:
        on_1 = api.post("/api/batches", params={"workflow": "change-of-address"}, files={"file": fh}).json()["batch_id"]
    assert server.wait_for_batch(on_1)["counts"]["done"] == 2
    submitted = {s["case_ref"] for s in server.submissions()}
    assert submitted == {"CASE-400000", "CASE-400001"}, "only the cases on publish 1 reached the portal"

    # The operator reads the trail: a failed sign-in, the hand-offs, pause, resume, publish and rollback.
    page = browser.new_context(viewport={"width": 1100, "height": 1000}).new_page()
    page.goto(f"{server.url}/sign-in")
    page.get_by_label("User name").fill("olga")
    page.get_by_label("Password", exact=True).fill("not her password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".govuk-error-summary")).to_be_visible()
    sign_in(page, server, "olga")
    page.get_by_role("link", name="Audit trail").click()
    actions = [r.get_attribute("data-action") for r in page.locator("#audit tbody tr").all()]
    assert actions == ["sign_in", "sign_in.failed", "batch.hand_off", "batch.resume", "workflow.rollback", "sign_in",
                       "batch.pause", "batch.hand_off", "workflow.publish"], actions
    trail = page.locator("#audit")
    expect(trail).to_contain_text("Rolled workflow change-of-address back (as publish 3, the source of publish 1; "
                                  "reason: Publish 2 hands every case back)")
    expect(trail).to_contain_text(f"Paused batch {on_2}")
    expect(page.locator("#head")).to_contain_text("The newest is number 9")
    shots(page, "audit-trail")

    page.select_option("#action", "batch.pause")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#audit tbody tr")).to_have_count(1)
    exported = page.request.get(f"{server.url}/audit.csv")
    table = list(csv.DictReader(io.StringIO(exported.text())))
    assert [r["seq"] for r in table] == [str(n) for n in range(1, 10)] and table[0]["action"] == "workflow.publish"
    lines = [json.loads(line) for line in page.request.get(f"{server.url}/audit.jsonl?user=olga").text().splitlines()]
    assert {r["actor"] for r in lines} == {"olga"} and all(re.fullmatch(r"[0-9a-f]{64}", r["hash"]) for r in lines)
    assert "CASE-3" not in exported.text(), "no case data in the trail"
