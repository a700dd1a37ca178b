"""Security checks of the fault suite: a canary secret used for sign-in appears nowhere it must not, every
listener the project starts binds 127.0.0.1, and the hand-off service refuses anonymous users, wrong
roles and forms without their CSRF token on every route."""

from __future__ import annotations

import base64
import json
import re
import secrets
import socket
import subprocess
import time
import urllib.parse
from pathlib import Path

import httpx
from kombu import Connection, Exchange, Queue

from bots.processes import descendants
from demo_portal import PortalProcess, portal_process
from orchestrator.queue import QUEUE
from tests.integration.handoff_rig import USERS, handoff_server

from .oracle import Verdict, accepted_refs
from .rig import FaultRig, record


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def forms(secret: str) -> list[bytes]:
    """The secret as it could leak: raw, URL-encoded, base64 and JSON-escaped."""
    return [secret.encode(), urllib.parse.quote(secret).encode(), base64.b64encode(secret.encode()),
            json.dumps(secret).encode()[1:-1]]


def test_a_canary_sign_in_secret_appears_in_no_log_ledger_message_metric_or_artifact(
        tmp_path: Path, rabbitmq: str, chromium: str) -> None:
    canary = "Canary-" + secrets.token_urlsafe(12) + "/+="
    mirror = Queue(f"autoclerk.test.mirror.{secrets.token_hex(4)}", Exchange(QUEUE, type="direct", durable=True),
                   routing_key=QUEUE, auto_delete=False, durable=False)
    with Connection(rabbitmq) as conn:
        mirror.bind(conn.default_channel).declare()  # a copy of every message on the work queue
    metrics_port = free_port()
    with portal_process(password=canary) as portal:
        rig = FaultRig(tmp_path, rabbitmq, portal)
        rig.env["AUTOCLERK_SECRET_PORTAL_PASSWORD"] = canary
        rig.env["AUTOCLERK_LOG_LEVEL"] = "DEBUG"
        from demo_portal import generate_cases

        cases = tmp_path / "cases.csv"
        generate_cases(cases, 10, invalid_rate=0.3, seed=71, start=14_000)  # refusals leave evidence
        try:
            rig.start_worker("--metrics-port", str(metrics_port))
            rig.wait_for_consumers(1)
            with rig.run_in_background(cases) as run:
                out, err = run.communicate(timeout=600)
            assert run.returncode == 0, err
            metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).content
        finally:
            rig.close()
        messages = []
        with Connection(rabbitmq) as conn:
            channel = conn.default_channel
            while (raw := channel.basic_get(mirror.name, no_ack=True)) is not None:
                messages.append(raw.body if isinstance(raw.body, bytes) else str(raw.body).encode())
            mirror.bind(channel).delete()
        places: dict[str, bytes] = {"run output": (out + err).encode(), "worker logs": rig.worker_logs().encode(),
                                    "metrics": metrics, "broker messages": b"\n".join(messages)}
        for path in tmp_path.rglob("*"):
            if path.is_file() and path.name != "cases.csv":
                places[f"file {path.relative_to(tmp_path)}"] = path.read_bytes() + str(path).encode()
        evidence = [p for p in (tmp_path / "artifacts").rglob("failure.*")]
        verdict = rig.verdict(cases)
    leaks = [where for where, content in places.items() if any(form in content for form in forms(canary))]
    confirmed = len(messages) > 0 and len(evidence) > 0 and "ledger.db" in " ".join(places)
    record("canary sign-in secret searched in logs, ledger, broker messages, metrics, artifacts",
           Verdict(len(accepted_refs(cases)), verdict.lost, verdict.duplicated, verdict.recovered,
                   verdict.unexpected + len(leaks)), confirmed=confirmed, recover_s=None, places=len(places),
           leaks=leaks)
    assert leaks == []


def listeners() -> dict[int, list[str]]:
    """Listening TCP sockets by process id, from ``ss``."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    found: dict[int, list[str]] = {}
    for line in out.splitlines():
        parts = line.split()
        for pid in re.findall(r"pid=(\d+)", line):
            found.setdefault(int(pid), []).append(parts[3])
    return found


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def test_every_listener_the_project_starts_binds_loopback(
        tmp_path: Path, rabbitmq: str, portal: PortalProcess, chromium: str) -> None:
    rig = FaultRig(tmp_path, rabbitmq, portal)
    try:
        worker = rig.start_worker("--metrics-port", str(free_port()))
        rig.wait_for_consumers(1)
        (tmp_path / "service").mkdir()
        with handoff_server(tmp_path / "service", portal) as server:
            ours = {pid for root in (worker.pid, server.process.pid, portal.process.pid) for pid in descendants(root)}
            deadline = time.monotonic() + 30
            while not all(pid in listeners() for pid in (worker.pid, server.process.pid)):
                assert time.monotonic() < deadline, "the worker's metrics and the service are listening"
                time.sleep(0.2)
            found = listeners()
            services = {pid: addrs for pid, addrs in found.items()
                        if Path(f"/proc/{pid}/comm").exists()
                        and Path(f"/proc/{pid}/comm").read_text().strip() in ("beam.smp", "epmd", "postgres")}
            checked = {pid: addrs for pid, addrs in found.items() if pid in ours} | services
    finally:
        rig.close()
    wide = {pid: [a for a in addrs if not a.startswith(("127.0.0.1:", "[::1]:"))] for pid, addrs in checked.items()}
    wide = {pid: addrs for pid, addrs in wide.items() if addrs}
    record("every listener binds 127.0.0.1 (service, worker metrics, portal, RabbitMQ, epmd, PostgreSQL)",
           Verdict(sum(len(a) for a in checked.values()), 0, 0, 0, sum(len(a) for a in wide.values()),
                   details=[f"{_comm(pid)} (pid {pid}) listens on {addrs}" for pid, addrs in wide.items()]),
           confirmed=len(checked) >= 3, recover_s=None, listeners=sum(len(a) for a in checked.values()))
    assert wide == {}, f"listeners on other interfaces: {wide}"


def test_the_hand_off_service_refuses_anonymous_users_wrong_roles_and_forms_without_csrf(
        tmp_path: Path, portal: PortalProcess, chromium: str) -> None:
    from tests.integration.test_handoff_security import PUBLIC, ROUTES, fill, sign_in_cookie

    from orchestrator.web.auth import SESSION_COOKIE

    refused = wrong = 0
    with handoff_server(tmp_path, portal) as server:
        cookies = {name: sign_in_cookie(server, name) for name in USERS}
        sample = {"batch_id": "nosuchbatch", "tx_id": "999999", "workflow": "change-of-address", "name": "change-of-address", "index": "0",
                  "action": "pause", "resolution": "close", "fmt": "csv"}
        checked = 0
        for method, path, roles, is_api in ROUTES:
            if (method, path) in PUBLIC:
                continue
            url = server.url + fill(path, sample)
            checked += 1
            answer = httpx.request(method, url, follow_redirects=False)
            refused += answer.status_code in ((401,) if is_api else (303,))
            wrong += answer.status_code not in ((401,) if is_api else (303,))
            for name, held in USERS.items():
                if roles and not set(held) & set(roles):
                    headers = {"authorization": f"Bearer {server.token(name)}"} if is_api else \
                        {"cookie": f"{SESSION_COOKIE}={cookies[name]}"}
                    answer = httpx.request(method, url, headers=headers, follow_redirects=False)
                    refused += answer.status_code == 403
                    wrong += answer.status_code != 403
            if method == "POST" and not is_api:
                insider = next(n for n, held in USERS.items() if not roles or set(held) & set(roles))
                answer = httpx.post(url, headers={"cookie": f"{SESSION_COOKIE}={cookies[insider]}"},
                                    files={"file": ("a.csv", b"case_ref\n")} if path.endswith("batch") else None,
                                    follow_redirects=False)
                refused += answer.status_code == 403
                wrong += answer.status_code != 403
    record("hand-off service: anonymous, wrong role, missing CSRF token on every route",
           Verdict(refused + wrong, 0, 0, 0, wrong), confirmed=checked > 30, recover_s=None, routes=checked)
