"""Failed sign-ins are slowed and then locked (for one user, and from one address), each logged without the
password and recorded in the audit trail; the access log holds no token, cookie or query secret; /readyz
says whether the ledger and the broker can be reached. Real HTTP against ``autoclerk serve``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx

from tests.integration.signin_rig import PASSWORD, serving

LOCK = {"AUTOCLERK_SIGN_IN_SLOW_AFTER": "2", "AUTOCLERK_SIGN_IN_LOCK_AFTER": "4",
        "AUTOCLERK_SIGN_IN_LOCK_AFTER_ADDRESS": "7", "AUTOCLERK_SIGN_IN_LOCK_MINUTES": "15"}
WRONG = "not-the-password-at-all"


def attempt(client: httpx.Client, username: str, password: str) -> httpx.Response:
    client.get("/sign-in")
    return client.post("/sign-in", data={"username": username, "password": password, "next": "/",
                                         "csrf_token": client.cookies["autoclerk_sign_in"]})


def test_repeated_failed_sign_ins_are_slowed_then_locked_and_recorded(tmp_path: Path) -> None:
    with serving(tmp_path, LOCK, users={"alice": ["caseworker"], "bob": ["caseworker"]}) as service, \
            httpx.Client(base_url=service.url, timeout=60) as client:
        assert [attempt(client, "alice", WRONG).status_code for _ in range(4)] == [401] * 4
        locked = attempt(client, "alice", PASSWORD)
        assert locked.status_code == 429, "the right password does not open a locked account"
        assert "too many failed attempts to sign in" in locked.text
        assert "autoclerk_session" not in client.cookies
        assert [r["actor"] for r in service.audit("sign_in.failed")] == ["alice"] * 4
        assert [(r["actor"], r["detail"]["by"]) for r in service.audit("sign_in.locked")] == [("alice", "user")]

        # another user from the same address: bob's own count is low, but the address reaches its limit
        assert attempt(client, "bob", PASSWORD).status_code == 303, "bob is not locked by alice's failures"
        assert [attempt(client, "bob", WRONG).status_code for _ in range(3)] == [401] * 3
        assert attempt(client, "bob", PASSWORD).status_code == 429, "seven failures from one address lock it"
        assert service.audit("sign_in.locked")[-1]["detail"]["by"] == "address"

        log = service.log.read_text()
        assert len(re.findall(r"sign-in failed", log)) == 7 and "sign-in locked" in log
        assert WRONG not in log and PASSWORD not in log
        assert all(WRONG not in json.dumps(r) for r in service.audit("sign_in"))


def test_the_access_log_has_no_secrets_and_readyz_checks_the_ledger_and_broker(tmp_path: Path) -> None:
    with serving(tmp_path, {}, users={"olga": ["operator"]}) as service, \
            httpx.Client(base_url=service.url, timeout=60) as client:
        assert attempt(client, "olga", PASSWORD).status_code == 303
        session = client.cookies["autoclerk_session"]
        assert client.get("/operations?workflow=change-of-address&code=abc123secret&token=tok987secret"
                          ).status_code == 200
        assert client.get("/api/batches", headers={"Authorization": "Bearer ack_bearer456secret"}).status_code == 401
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json() == {"ok": True, "ledger": "ok", "broker": "embedded"}
        assert client.get("/healthz").json() == {"ok": True}

        lines = [line for line in service.log.read_text().splitlines() if line.startswith("event='request'")]
        page = next(line for line in lines if "path='/operations" in line)
        assert "method='GET'" in page and "status=200" in page and "user='olga'" in page and "client='127.0.0.1'" in page
        assert "workflow=change-of-address" in page and "code=[redacted]" in page and "duration_ms=" in page
        text = service.log.read_text()
        for secret in ("abc123secret", "tok987secret", "bearer456secret", session, PASSWORD):
            assert secret not in text
        assert any("path='/readyz'" in line and "status=200" in line for line in lines)
