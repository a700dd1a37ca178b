"""A broken configuration with a broker, end to end: real RabbitMQ, a real worker process, the hand-off
service, real Chromium and the demo portal.

A worker reports in its heartbeat the names it can resolve. While the only live worker lacks the portal's
secret, every hand-off is refused with one line (the CLI, the API and the pages) and publishing warns.
Cases handed off before the secret went missing are held (paused, no attempt spent), shown to operators
and counted in a gauge; once the secret is back, resuming the batch finishes them. An operator's "run
again" of a finished case is then published at once through RabbitMQ, and its lookup finds the record
the portal already holds.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from bots import launch_options
from demo_portal import PortalProcess, generate_cases
from orchestrator import Ledger, load_settings
from orchestrator.ledger import HELD
from orchestrator.queue import Publisher, hand_off, make_celery
from tests.conftest import EXAMPLE, ROOT, autoclerk, wait_for_consumers
from tests.integration.handoff_rig import FAST, HandoffServer, handoff_server, sign_in
from workflows import load_workflow

REFUSAL = ("workflow change-of-address cannot run on any of the 1 live worker: secret 'portal_password' is not set: "
           "set AUTOCLERK_SECRET_PORTAL_PASSWORD or add it to the secrets file (on the workers).")


def wait_until(condition: Callable[[], object], what: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout_s:g} s"
        time.sleep(0.3)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path, portal: PortalProcess, rabbitmq: str, chromium: str) -> Iterator[HandoffServer]:
    with handoff_server(tmp_path, portal, env={"AUTOCLERK_BROKER_URL": rabbitmq}) as running:
        yield running


def test_a_worker_without_the_secret_refuses_hand_offs_holds_running_cases_and_a_resume_finishes_them(
        server: HandoffServer, rabbitmq: str, portal: PortalProcess, chromium: str, tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.json"
    secrets.write_text("{}")
    metrics_port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "AUTOCLERK_SECRET_PORTAL_PASSWORD"}
    env.update(FAST, AUTOCLERK_SECRETS_FILE=str(secrets), AUTOCLERK_ARTIFACTS_DIR=str(tmp_path / "worker-artifacts"))
    log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 - closed below
    worker = subprocess.Popen([sys.executable, "-m", "orchestrator", "worker", "--broker", rabbitmq, "--ledger",
                               server.ledger_url, "--system", f"portal={portal.url}", "--metrics-port", str(metrics_port)],
                              cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=log)
    ledger = Ledger(server.ledger_url)
    try:
        wait_for_consumers(rabbitmq, 1)
        wait_until(lambda: any(w["kind"] == "worker" and w["resolves"] is not None for w in ledger.heartbeats.workers()),
                   "the worker's first heartbeat")
        assert ledger.heartbeats.workers()[-1]["resolves"]["systems"] == ["portal"]
        cases = tmp_path / "cases.csv"
        generate_cases(cases, 3, seed=21, start=700)

        # Refused everywhere with the same line, and nothing is queued.
        with server.api("alice") as api:
            answer = api.post("/api/batches", params={"workflow": "change-of-address"},
                              files={"file": ("cases.csv", cases.read_bytes(), "text/csv")})
            assert answer.status_code == 503 and answer.json()["detail"] == REFUSAL + " Nothing was queued"
            one = api.post("/api/cases", params={"workflow": "change-of-address"}, json={"case_ref": "CASE-000799"})
            assert one.status_code == 503 and one.json()["detail"].startswith(REFUSAL)
        run = autoclerk("run", str(EXAMPLE), "--cases", str(cases), "--broker", rabbitmq, "--ledger", server.ledger_url,
                        "--system", f"portal={portal.url}", cwd=tmp_path)
        assert run.returncode == 2 and run.stderr == f"autoclerk: error: {REFUSAL} Nothing was queued\n", run.stderr
        with server.api("arthur") as api:
            published = api.post("/api/workflows", data={"main": "change_of_address.yaml"}, files=[
                ("files", ("change_of_address.yaml", EXAMPLE.read_bytes())),
                ("files", ("sign_in.yaml", (EXAMPLE.parent / "sign_in.yaml").read_bytes()))])
            assert published.status_code == 201 and published.json()["warnings"][0].startswith(REFUSAL)
        from_cli = autoclerk("workflows", "publish", str(EXAMPLE), "--ledger", server.ledger_url, cwd=tmp_path)
        assert from_cli.returncode == 0 and from_cli.stderr.startswith(f"autoclerk: warning: {REFUSAL}"), from_cli.stderr
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, **launch_options())
            page = browser.new_context(viewport={"width": 1100, "height": 800}).new_page()
            sign_in(page, server, "alice")
            page.goto(f"{server.url}/hand-off/change-of-address/batch")
            page.set_input_files("#file", str(cases))
            page.get_by_role("button", name="Upload and hand off").click()
            expect(page.locator("h1")).to_have_text("This work cannot be handed off now")
            page.locator("summary", has_text="Details for the people who run Autoclerk").click()
            expect(page.locator("#refusal-detail")).to_contain_text("AUTOCLERK_SECRET_PORTAL_PASSWORD")
            if os.environ.get("AUTOCLERK_UPDATE_SCREENSHOTS"):
                page.screenshot(path=str(ROOT / "docs" / "images" / "handoff" / "hand-off-refused.png"), full_page=True)
            browser.close()
        assert ledger.batches.recent(10) == [] and server.submissions() == []

        # Handed off before the secret went missing (the check is bypassed here): the cases are held.
        settings = load_settings(broker_url=rabbitmq, ledger_url=server.ledger_url)
        receipt = hand_off(ledger, Publisher(make_celery(settings), ledger, 10), load_workflow(EXAMPLE), cases)
        wait_until(lambda: ledger.reports.counts(receipt.batch_id)["paused"] == 3, "the three cases being held")
        for case in ledger.cases.list(receipt.batch_id):
            assert case["error_class"] == HELD and case["error_message"].startswith("Held: the bots are not set up")
            found = ledger.cases.get(case["id"])
            assert found is not None and found["max_attempts"] - found["attempts"] == 3, "no attempt was spent"
        with server.api("olga") as api:
            assert api.get("/api/operations").json()["held"] == {"change-of-address": 3}
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, **launch_options())
            page = browser.new_context(viewport={"width": 1100, "height": 800}).new_page()
            sign_in(page, server, "olga")
            page.goto(f"{server.url}/operations")
            expect(page.locator("#held")).to_contain_text("change-of-address: 3 case(s) held")
            if os.environ.get("AUTOCLERK_UPDATE_SCREENSHOTS"):
                page.screenshot(path=str(ROOT / "docs" / "images" / "handoff" / "operations-held.png"))
            page.goto(f"{server.url}/batches/{receipt.batch_id}")
            expect(page.locator('[data-state="paused"]')).to_have_text("3")
            expect(page.locator("#cases")).to_contain_text("Held: the bots are not set up to run this workflow")
            browser.close()
        scrape = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=30).text
        assert 'autoclerk_cases_held_for_configuration{workflow="change-of-address"} 3.0' in scrape
        shown = autoclerk("batches", "show", receipt.batch_id, "--ledger", server.ledger_url, "--json", cwd=tmp_path)
        assert all("AUTOCLERK_SECRET_PORTAL_PASSWORD" in json.loads(line)["error_detail"]
                   for line in shown.stdout.splitlines()[:-1])

        # The secret is back: the next heartbeat says so, and resuming the batch finishes its cases.
        secrets.write_text(json.dumps({"portal_password": "demo-password"}))
        wait_until(lambda: "portal_password" in ledger.heartbeats.workers()[-1]["resolves"]["secrets"],
                   "a heartbeat naming the secret")
        with server.api("olga") as api:
            assert api.post(f"/api/batches/{receipt.batch_id}/resume").status_code == 200
        status = server.wait_for_batch(receipt.batch_id)
        assert status["counts"]["done"] + status["counts"]["business_exception"] == 3 and status["counts"]["failed"] == 0
        assert scrape_held(metrics_port) == ""
        done = [c for c in ledger.cases.list(receipt.batch_id) if c["state"] == "done"]
        submitted = len(server.submissions())
        assert done and submitted == len(done)

        # An operator runs a finished case again: published at once through RabbitMQ, found by its lookup.
        attempts_before = len(ledger.cases.get(done[0]["id"])["history"])  # type: ignore[index]
        again = autoclerk("cases", "rerun", done[0]["case_ref"], "--workflow", "change-of-address", "--reason",
                          "the citizen says it is missing", "--broker", rabbitmq, "--ledger", server.ledger_url,
                          cwd=tmp_path)
        assert again.returncode == 0 and "published" in again.stdout, again.stdout + again.stderr
        wait_until(lambda: (ledger.cases.get(done[0]["id"]) or {}).get("state") == "done"
                   and len((ledger.cases.get(done[0]["id"]) or {}).get("history", [])) > attempts_before,
                   "the rerun case ending")
        assert len(server.submissions()) == submitted, "the lookup found the record: nothing was submitted twice"
        assert ledger.cases.get(done[0]["id"])["actions"][-1]["action"] == "rerun"  # type: ignore[index]
    finally:
        ledger.close()
        worker.terminate()
        worker.wait(timeout=60)
        log.close()


def scrape_held(port: int) -> str:
    """The held-cases samples of a worker's /metrics, once the gauge's 15 s cache has caught up (empty when none)."""
    deadline = time.monotonic() + 60
    while True:
        lines = [line for line in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text.splitlines()
                 if line.startswith("autoclerk_cases_held_for_configuration{")]
        if not lines or time.monotonic() > deadline:
            return "\n".join(lines)
        time.sleep(1)
