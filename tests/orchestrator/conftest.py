"""The ledger on both backends (a SQLite file and a throwaway PostgreSQL database), and a target system that
answers."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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
