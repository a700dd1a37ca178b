"""The ledger on both backends (a SQLite file and a throwaway PostgreSQL database), and a target system that
answers."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bots import BotResult
from orchestrator import Ledger
from workflows import parse_workflow

SETTLED = parse_workflow("""
name: settled
version: 1
systems: {portal: {}}
input:
  case_ref: {type: string}
steps:
  - goto: /
  - click: {locator: "#send", submit: true}
lookup:
  - goto: /
""")
"""A workflow that submits, with a lookup: for the rules of a case that may have been submitted."""


class Scripted:
    """A bot engine that runs nothing and notes what it was asked to run (``ran``, ``folders``): each run of the
    steps begins the submit, then meets the next of ``submits`` (an exception is raised, ``None`` submits; once
    they are used up, every run submits); the lookup finds ``found``."""

    def __init__(self, submits: list[BaseException | None] | None = None, found: str | None = None,
                 on_fail: Any = None) -> None:
        self.submits, self.found, self.on_fail, self.ran = list(submits or []), found, on_fail, []  # type: ignore[var-annotated]
        self.folders: list[str | None] = []

    def run(self, job: Any, before_effect: Any) -> BotResult:
        self.ran.append(job.label)
        self.folders.append(job.folder)
        if job.label == "lookup":
            return BotResult(output={"reference": self.found} if self.found else {})
        before_effect()
        failure = self.submits.pop(0) if self.submits else None
        if failure is not None:
            if self.on_fail is not None:
                self.on_fail()
            raise failure
        return BotResult(output={"reference": "SUBMITTED"})

    def close(self) -> None:
        """Nothing to close."""


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'ledger.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    opened = Ledger(url)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def portal_url() -> Iterator[str]:
    """A target system that answers (so a 503 is not taken for an outage when the breaker probes it)."""
    class Answers(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the handler's name is http.server's
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"portal")

        def log_message(self, *args: Any) -> None:
            """Quiet."""

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()
