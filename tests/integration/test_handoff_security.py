"""The hand-off service refuses anonymous requests and wrong roles on every route, refuses form posts
without their CSRF token, escapes whatever people and files put into it, keeps file names from walking
out of their folder, and refuses an upload of a gigabyte of garbage without its memory growing.

Routes are read from the application itself, so a route added later without a role check fails here.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path

import httpx
import pytest

from demo_portal import PortalProcess
from orchestrator.ledger import Ledger
from orchestrator.web import api, audit_pages, batch_pages, handoff_pages, ops_pages, signin
from orchestrator.web.auth import SESSION_COOKIE, SIGN_IN_COOKIE
from tests.integration.handoff_rig import PASSWORD, USERS, HandoffServer, handoff_server
from workflows import parse_workflow

PUBLIC = {("GET", "/sign-in"), ("POST", "/sign-in"), ("GET", "/healthz")}
ECHO_WORKFLOW = """
name: echo-ref
version: 1
description: Hands every case back, quoting its reference (for the escaping tests).
systems:
  portal: {}
input:
  case_ref: {type: string, max_length: 128}
  note: {type: string, required: false, max_length: 100000}
steps:
  - fail: {message: "Cannot do {{ case.case_ref }}"}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, chromium: str) -> Iterator[HandoffServer]:
    from demo_portal import portal_process

    tmp = tmp_path_factory.mktemp("security")
    with portal_process() as portal, handoff_server(tmp, portal, env={"AUTOCLERK_SECRET_PORTAL_PASSWORD": "demo-password"}
                                                    ) as running:
        ledger = Ledger(running.ledger_url)
        try:
            ledger.workflows.publish(parse_workflow(ECHO_WORKFLOW, "echo.yaml"), "arthur", "echo.yaml")
        finally:
            ledger.close()
        yield running


def sign_in_cookie(server: HandoffServer, username: str) -> str:
    """Sign in with plain HTTP as a browser would, and return the session cookie's value."""
    with httpx.Client(base_url=server.url) as client:
        page = client.get("/sign-in")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        sign_in_value = SimpleCookie(page.headers["set-cookie"])[SIGN_IN_COOKIE].value
        answer = client.post("/sign-in", data={"csrf_token": token, "username": username, "password": PASSWORD,
                                               "next": "/"}, headers={"cookie": f"{SIGN_IN_COOKIE}={sign_in_value}"})
    assert answer.status_code == 303, answer.text
    cookie = next(SimpleCookie(h)[SESSION_COOKIE] for h in answer.headers.get_list("set-cookie") if SESSION_COOKIE in h)
    assert cookie["secure"] and cookie["httponly"] and cookie["samesite"].lower() == "lax"
    return cookie.value


@pytest.fixture(scope="module")
def cookies(server: HandoffServer) -> dict[str, str]:
    return {name: sign_in_cookie(server, name) for name in USERS}


@pytest.fixture(scope="module")
def sample(server: HandoffServer) -> dict[str, str]:
    """A batch and a case of alice's to put into the routes' paths."""
    with server.api("alice") as client:
        receipt = client.post("/api/batches", params={"workflow": "echo-ref"},
                              files={"file": ("s.csv", b"case_ref\nSAMPLE-1\n")}).json()
        case = client.get(f"/api/batches/{receipt['batch_id']}/cases").json()[0]
    return {"batch_id": receipt["batch_id"], "tx_id": str(case["id"]), "workflow": "change-of-address", "name": "change-of-address", "index": "0",
            "action": "pause", "resolution": "close", "fmt": "csv"}


def routes() -> list[tuple[str, str, tuple[str, ...] | None, bool]]:
    """Every route of the application: (method, path, roles its auth check asks for, whether it is the API)."""
    found = []
    for module in (signin, handoff_pages, batch_pages, ops_pages, audit_pages, api):
        for route in module.router.routes:
            roles = next((dep.call.roles for dep in route.dependant.dependencies  # type: ignore[attr-defined]
                          if hasattr(dep.call, "roles")), None)
            for method in route.methods:  # type: ignore[attr-defined]
                found.append((method, route.path, roles, route.path.startswith("/api")))  # type: ignore[attr-defined]
    return found


ROUTES = routes()


def test_every_route_but_sign_in_checks_who_is_asking() -> None:
    unchecked = [(m, p) for m, p, roles, _ in ROUTES if roles is None and (m, p) not in PUBLIC]
    assert unchecked == [], "routes without a sign-in or token check"
    assert len(ROUTES) > 30


def fill(path: str, sample: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: sample[m.group(1)], path)


@pytest.mark.parametrize(("method", "path", "roles", "is_api"),
                         [r for r in ROUTES if (r[0], r[1]) not in PUBLIC], ids=lambda v: str(v))
def test_a_route_refuses_an_anonymous_request_and_a_user_without_its_role(
        server: HandoffServer, cookies: dict[str, str], sample: dict[str, str], method: str, path: str,
        roles: tuple[str, ...], is_api: bool) -> None:
    url = server.url + fill(path, sample)
    anonymous = httpx.request(method, url, follow_redirects=False)
    if is_api:
        assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    else:
        assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/sign-in?next=")
    outsiders = [name for name, held in USERS.items() if roles and not set(held) & set(roles)]
    for name in outsiders:
        if is_api:
            answer = httpx.request(method, url, headers={"authorization": f"Bearer {server.token(name)}"})
        else:
            answer = httpx.request(method, url, headers={"cookie": f"{SESSION_COOKIE}={cookies[name]}"},
                                   data={"csrf_token": "x"}, follow_redirects=False)
        assert answer.status_code == 403, (name, answer.status_code, answer.text[:300])
    if is_api:  # a browser's cookie never opens the API
        answer = httpx.request(method, url, headers={"cookie": f"{SESSION_COOKIE}={cookies['olga']}"})
        assert answer.status_code == 401


POSTS = [r for r in ROUTES if r[0] == "POST" and not r[3] and (r[0], r[1]) not in PUBLIC]


@pytest.mark.parametrize(("method", "path", "roles", "is_api"), POSTS, ids=lambda v: str(v))
def test_a_form_post_without_its_csrf_token_is_refused(
        server: HandoffServer, cookies: dict[str, str], sample: dict[str, str], method: str, path: str,
        roles: tuple[str, ...], is_api: bool) -> None:
    insider = next(name for name, held in USERS.items() if not roles or set(held) & set(roles))
    headers = {"cookie": f"{SESSION_COOKIE}={cookies[insider]}"}
    url = server.url + fill(path, sample)
    for data in ({}, {"csrf_token": "forged"}):
        if path.endswith("/batch") or path == "/workflows":  # multipart forms: the token comes first
            answer = httpx.post(url, headers=headers, data=data, files={"file": ("a.csv", b"case_ref\nX\n"),
                                                                         "files": ("a.yaml", b"name: x\n")})
        else:
            answer = httpx.post(url, headers=headers, data=data, follow_redirects=False)
        assert answer.status_code == 403, (path, data, answer.status_code)
        assert "security token" in answer.text


def test_the_sign_in_form_needs_its_token_and_says_nothing_about_which_part_was_wrong(server: HandoffServer) -> None:
    assert httpx.post(f"{server.url}/sign-in", data={"username": "alice", "password": PASSWORD}).status_code == 403
    with httpx.Client(base_url=server.url) as client:
        page = client.get("/sign-in")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        cookie = {"cookie": f"{SIGN_IN_COOKIE}={SimpleCookie(page.headers['set-cookie'])[SIGN_IN_COOKIE].value}"}
        wrong_password = client.post("/sign-in", data={"csrf_token": token, "username": "alice", "password": "nope"},
                                     headers=cookie)
        no_such_user = client.post("/sign-in", data={"csrf_token": token, "username": "mallory", "password": "nope"},
                                   headers=cookie)
    assert wrong_password.status_code == no_such_user.status_code == 401
    assert "The user name or password is not right" in wrong_password.text and "mallory" in no_such_user.text
    assert "is not right" in no_such_user.text


def test_every_page_carries_a_strict_content_security_policy(server: HandoffServer, cookies: dict[str, str]) -> None:
    answer = httpx.get(f"{server.url}/batches", headers={"cookie": f"{SESSION_COOKIE}={cookies['olga']}"})
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self' 'nonce-" in policy and "frame-ancestors 'none'" in policy
    assert answer.headers["x-frame-options"] == "DENY" and answer.headers["x-content-type-options"] == "nosniff"
    nonce = re.search(r"'nonce-([^']+)'", policy).group(1)  # type: ignore[union-attr]
    scripts = re.findall(r"<script(?P<attrs>[^>]*)>", answer.text)
    assert scripts and all(f'nonce="{nonce}"' in attrs or "src=" in attrs for attrs in scripts)


def test_html_in_a_case_reference_and_path_tricks_in_a_file_name_are_shown_escaped_and_stored_safely(
        server: HandoffServer, cookies: dict[str, str]) -> None:
    hostile = "<script>alert('ref')</script>"
    name = "../../etc/<img src=x onerror=alert(1)>.csv"
    with server.api("alice") as client:
        receipt = client.post("/api/batches", params={"workflow": "echo-ref"},
                              files={"file": (name, f"case_ref,note\n\"{hostile}\",\"<b>bold</b>\"\n".encode())}).json()
        assert receipt["accepted"] == 1, receipt
        batch_id = receipt["batch_id"]
        status = server.wait_for_batch(batch_id)
        assert status["source_name"] == "<img src=x onerror=alert(1)>.csv", "no directory part is kept"
        case = client.get(f"/api/batches/{batch_id}/cases").json()[0]
    assert case["case_ref"] == hostile and case["state"] == "business_exception"
    headers = {"cookie": f"{SESSION_COOKIE}={cookies['alice']}"}
    for path in (f"/batches/{batch_id}", f"/cases/{case['id']}", "/exceptions", "/batches", f"/cases/{case['id']}/resolve"):
        page = httpx.get(server.url + path, headers=headers).text
        assert "<script>alert(" not in page and "<img src=x" not in page and "<b>bold</b>" not in page, path
    page = httpx.get(f"{server.url}/cases/{case['id']}", headers=headers).text
    assert "&lt;script&gt;alert(&#39;ref&#39;)&lt;/script&gt;" in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page
    batches_page = httpx.get(f"{server.url}/batches", headers=headers).text
    assert "&lt;img src=x onerror=alert(1)&gt;.csv" in batches_page


def test_a_caseworker_cannot_see_another_caseworkers_batch_or_case(
        server: HandoffServer, cookies: dict[str, str], sample: dict[str, str]) -> None:
    with server.api("bob") as bob:
        assert bob.get(f"/api/batches/{sample['batch_id']}").status_code == 404
        assert bob.get(f"/api/cases/{sample['tx_id']}").status_code == 404
        assert all(b["created_by"] == "bob" for b in bob.get("/api/batches").json())
    page = httpx.get(f"{server.url}/cases/{sample['tx_id']}", headers={"cookie": f"{SESSION_COOKIE}={cookies['bob']}"})
    assert page.status_code == 404
    with server.api("olga") as operator:
        assert operator.get(f"/api/batches/{sample['batch_id']}").status_code == 200


def rss_peak_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]


@pytest.mark.parametrize(("garbage", "expected"), [
    (os.urandom(1 << 20), "is not UTF-8 text"),
    (b"A" * (1 << 20), "has a line longer than"),
], ids=["random-bytes", "one-endless-line"])
def test_an_upload_of_a_gigabyte_of_garbage_is_refused_cleanly_and_memory_does_not_grow(
        server: HandoffServer, garbage: bytes, expected: str) -> None:
    pid = server.process.pid
    before = rss_peak_kb(pid)
    boundary = "garbage-boundary"

    def body() -> Iterator[bytes]:
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"junk.csv\"\r\n"
               "Content-Type: text/csv\r\n\r\n").encode()
        for _ in range(1024):  # 1 GiB
            yield garbage
        yield f"\r\n--{boundary}--\r\n".encode()

    started = time.monotonic()
    answer = httpx.post(f"{server.url}/api/batches", params={"workflow": "change-of-address"}, content=body(),
                        headers={"authorization": f"Bearer {server.token('alice')}",
                                 "content-type": f"multipart/form-data; boundary={boundary}"}, timeout=300)
    elapsed = time.monotonic() - started
    assert answer.status_code == 422, answer.text
    assert expected in answer.json()["detail"]
    grown_mb = (rss_peak_kb(pid) - before) / 1024
    assert grown_mb < 64, f"the service's peak memory grew by {grown_mb:.0f} MB on a 1 GiB upload"
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    print(f"1 GiB refused in {elapsed:.1f} s; peak memory grew {grown_mb:.1f} MB")


def test_an_upload_over_the_size_limit_is_refused_before_it_is_read(server: HandoffServer) -> None:
    import socket
    from urllib.parse import urlsplit

    where = urlsplit(server.url)
    with socket.create_connection((where.hostname, where.port), timeout=30) as conn:
        conn.sendall((f"POST /api/batches?workflow=change-of-address HTTP/1.1\r\nHost: {where.netloc}\r\n"
                      f"Authorization: Bearer {server.token('alice')}\r\n"
                      "Content-Type: multipart/form-data; boundary=x\r\n"
                      f"Content-Length: {10 * 2**40}\r\n\r\n").encode())
        # Answered without a byte of the body sent; the answer's head and body may come in separate segments.
        answer = b""
        while True:
            head_part, _, body = answer.partition(b"\r\n\r\n")
            length = next((int(line.split(b":", 1)[1]) for line in head_part.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), None)
            if _ and length is not None and len(body) >= length:
                break
            chunk = conn.recv(65536)
            if not chunk:
                break
            answer += chunk
        head = answer.decode("latin-1")
    assert head.startswith("HTTP/1.1 413"), head[:200]
    assert "larger than" in head
