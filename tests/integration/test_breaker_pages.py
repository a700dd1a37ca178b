"""Open circuit breakers where operators look: the operations page (real Chromium), ``GET /api/operations`` and
``autoclerk status``. The screenshot ``docs/images/handoff/operations-breaker.png`` is taken here
(``AUTOCLERK_UPDATE_SCREENSHOTS=1``)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from bots import launch_options
from demo_portal import PortalProcess
from orchestrator import Ledger
from tests.conftest import ROOT, autoclerk
from tests.integration.handoff_rig import HandoffServer, handoff_server, sign_in


@pytest.fixture
def server(tmp_path: Path, portal: PortalProcess, chromium: str) -> Iterator[HandoffServer]:
    with handoff_server(tmp_path, portal) as running:
        yield running


def test_an_open_breaker_is_named_on_the_operations_page_the_api_and_status_until_a_probe_closes_it(
        server: HandoffServer, chromium: str, tmp_path: Path) -> None:
    ledger = Ledger(server.ledger_url)
    try:
        opened = ledger.breakers.failed("portal", threshold=1, open_s=600, reason="answered 503")
        assert opened.state == "open"
        with server.api("olga") as api:
            [shown] = api.get("/api/operations").json()["breakers"]
        assert (shown["system"], shown["state"], shown["reason"]) == ("portal", "open", "answered 503")

        status = autoclerk("status", "--ledger", server.ledger_url, cwd=tmp_path)
        assert status.returncode == 0, status.stderr
        assert "circuit breaker open portal: not answering since" in status.stdout
        assert "(answered 503); no case for it is started, next check after" in status.stdout
        as_json = autoclerk("status", "--ledger", server.ledger_url, "--json", cwd=tmp_path)
        assert [b["system"] for b in json.loads(as_json.stdout.splitlines()[-1])["breakers"]] == ["portal"]

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, **launch_options())
            page = browser.new_context(viewport={"width": 1100, "height": 800}).new_page()
            sign_in(page, server, "olga")
            page.goto(f"{server.url}/operations")
            warning = page.locator("#breakers")
            expect(warning).to_contain_text("A target system is not answering, so no case for it is started")
            expect(warning.locator('[data-system="portal"]')).to_contain_text("portal: not answering since")
            expect(warning.locator('[data-system="portal"]')).to_contain_text("(it answered 503). Next check after")
            if os.environ.get("AUTOCLERK_UPDATE_SCREENSHOTS"):
                page.screenshot(path=str(ROOT / "docs" / "images" / "handoff" / "operations-breaker.png"))

            assert ledger.breakers.take_probe("portal", "test", lease_s=60, now=opened.probe_at)
            page.reload()
            expect(warning.locator('[data-system="portal"]')).to_contain_text("Being checked now.")
            ledger.breakers.probed("portal", "test", up=True, open_s=600)
            page.reload()
            expect(page.locator("#breakers")).to_have_count(0)
            browser.close()
        status = autoclerk("status", "--ledger", server.ledger_url, cwd=tmp_path)
        assert "circuit breaker" not in status.stdout
    finally:
        ledger.close()
