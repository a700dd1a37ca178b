"""What the sign-in tests share: ``autoclerk serve`` (no bots) on a free loopback port, and the real OpenID
provider (``tests/oidc_provider``, the npm package ``oidc-provider``) on a socket bound here first, so its
address is known before either starts."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from orchestrator.accounts import Accounts
from orchestrator.ledger import Ledger
from orchestrator.web import READY_PREFIX
from tests.conftest import need

PROVIDER = Path(__file__).parents[1] / "oidc_provider"
PASSWORD = "correct-horse-battery-staple"
CLIENT_ID, CLIENT_SECRET = "autoclerk", "a-client-secret-for-the-test-only"


@dataclass
class Serving:
    url: str
    ledger_url: str
    log: Path
    process: subprocess.Popen[str]

    def audit(self, action: str) -> list[dict]:
        ledger = Ledger(self.ledger_url)
        try:
            return ledger.audit.records(action=action)
        finally:
            ledger.close()


def bound_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout:
        proc.stdout.close()


@contextmanager
def serving(tmp_path: Path, env: dict[str, str], *, users: dict[str, list[str]] | None = None) -> Iterator[Serving]:
    """``autoclerk serve`` with its own SQLite ledger, local users (password :data:`PASSWORD`) and ``env``."""
    folder = tmp_path / f"serve-{len(list(tmp_path.glob('serve-*')))}"
    folder.mkdir()
    ledger_url = f"sqlite:///{folder / 'ledger.db'}"
    ledger = Ledger(ledger_url)
    try:
        for name, roles in (users or {}).items():
            Accounts(ledger.engine).add_user(name, roles, PASSWORD)
    finally:
        ledger.close()
    log = folder / "serve.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "serve", "--port", "0", "--ledger", ledger_url,
                                 "--insecure-cookies"], cwd=folder, stdout=subprocess.PIPE, stderr=err, text=True,
                                env={**os.environ, "AUTOCLERK_BOT": "null", **env})
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith(READY_PREFIX), f"the service did not start: {line!r}\n{log.read_text()[-3000:]}"
        yield Serving(line[len(READY_PREFIX):].strip(), ledger_url, log, proc)
    finally:
        _stop(proc)


@contextmanager
def oidc_provider(sock: socket.socket, redirect_uri: str, accounts: dict[str, list[str]]) -> Iterator[str]:
    """The npm package ``oidc-provider`` serving on ``sock``; yields its issuer URL."""
    node = shutil.which("node")
    need(node is not None and (PROVIDER / "node_modules" / "oidc-provider").is_dir(),
         "Node.js and tests/oidc_provider/node_modules are needed (make oidc-provider)")
    proc = subprocess.Popen([str(node), "provider.js"], cwd=PROVIDER, stdout=subprocess.PIPE, text=True,
                            pass_fds=[sock.fileno()],
                            env={**os.environ, "LISTEN_FD": str(sock.fileno()), "CLIENT_ID": CLIENT_ID,
                                 "CLIENT_SECRET": CLIENT_SECRET, "REDIRECT_URI": redirect_uri,
                                 "ACCOUNTS": json.dumps(accounts)})
    sock.close()  # the provider has its own copy
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith("listening on "), f"the OpenID provider did not start: {line!r}"
        yield line.removeprefix("listening on ").strip()
    finally:
        _stop(proc)
