"""The hand-off service as the tests run it: ``autoclerk serve`` in a child process on a free loopback port,
with its own ledger, users of every role, the change-of-address workflow published, bots in the
process (embedded) against the demo portal. Users are made through the accounts API; the CLI that does
the same is tested on its own."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from demo_portal import PortalProcess
from orchestrator.accounts import Accounts
from orchestrator.ledger import Ledger
from orchestrator.web import READY_PREFIX
from tests.conftest import EXAMPLE
from workflows import load_workflow

PASSWORD = "correct-horse-battery-staple"
USERS = {"alice": ["caseworker"], "bob": ["caseworker"], "olga": ["operator"], "arthur": ["author"]}
FAST = {"AUTOCLERK_TRANSACTION_BUDGET_S": "30", "AUTOCLERK_LEASE_S": "40", "AUTOCLERK_SWEEP_INTERVAL_S": "1",
        "AUTOCLERK_RETRY_BASE_S": "0.5", "AUTOCLERK_STEP_TIMEOUT_MS": "8000", "AUTOCLERK_CONCURRENCY": "4"}


@dataclass
class HandoffServer:
    """A running service: its URL, ledger, artifacts folder and the portal its bots work on."""

    url: str
    ledger_url: str
    artifacts: Path
    portal: PortalProcess
    process: subprocess.Popen[str]
    log: Path
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, username: str) -> str:
        """An API token of ``username`` (made once)."""
        if username not in self.tokens:
            ledger = Ledger(self.ledger_url)
            try:
                self.tokens[username] = Accounts(ledger.engine).new_token(username)
            finally:
                ledger.close()
        return self.tokens[username]

    def api(self, username: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token(username)}"}, timeout=60)

    def wait_for_batch(self, batch_id: str, timeout_s: float = 240) -> dict:
        """Poll the API until every case of the batch is finished; return its status."""
        deadline = time.monotonic() + timeout_s
        with self.api("olga") as api:
            while True:
                status = api.get(f"/api/batches/{batch_id}").json()
                if status["total"] and status["finished"] == status["total"]:
                    return status
                assert time.monotonic() < deadline, f"batch {batch_id} did not finish: {status}\n{self.log.read_text()[-3000:]}"
                time.sleep(0.3)

    def wait_for_case(self, api: httpx.Client, tx_id: int, timeout_s: float = 120) -> dict:
        """Poll ``GET /api/cases/{id}`` until the case has ended (done, handed back or failed)."""
        deadline = time.monotonic() + timeout_s
        while (case := api.get(f"/api/cases/{tx_id}").json())["state"] not in ("done", "business_exception", "failed"):
            assert time.monotonic() < deadline, f"case {tx_id} did not end: {case['state']}"
            time.sleep(0.2)
        return case

    def submissions(self) -> list[dict]:
        return httpx.get(f"{self.portal.url}/api/export", timeout=30).json()


def prepare_ledger(ledger_url: str) -> None:
    ledger = Ledger(ledger_url)
    try:
        accounts = Accounts(ledger.engine)
        for name, roles in USERS.items():
            accounts.add_user(name, roles, PASSWORD)
        ledger.workflows.publish(load_workflow(EXAMPLE), "arthur", str(EXAMPLE))
    finally:
        ledger.close()


@contextmanager
def handoff_server(tmp_path: Path, portal: PortalProcess, *, env: dict[str, str] | None = None) -> Iterator[HandoffServer]:
    """Start ``autoclerk serve`` on a free port and stop it (SIGTERM) afterwards."""
    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    prepare_ledger(ledger_url)
    artifacts = tmp_path / "artifacts"
    log = tmp_path / "serve.log"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "serve", "--port", "0", "--ledger", ledger_url,
             "--system", f"portal={portal.url}"],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=err, text=True,
            env={**os.environ, **FAST, "AUTOCLERK_ARTIFACTS_DIR": str(artifacts), **(env or {})})
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith(READY_PREFIX), f"the service did not start: {line!r}\n{log.read_text()[-3000:]}"
        yield HandoffServer(line[len(READY_PREFIX):].strip(), ledger_url, artifacts, portal, proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


def sign_in(page, server: HandoffServer, username: str) -> None:  # type: ignore[no-untyped-def]
    """Sign in through the sign-in page, as a person would."""
    page.goto(f"{server.url}/sign-in")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/sign-in" not in url)
