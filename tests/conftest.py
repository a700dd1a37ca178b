"""Shared fixtures: the demo portal on loopback, the CLI as a subprocess, RabbitMQ when present.

Integration fixtures skip on a developer machine without the service, and fail under CI=true.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from demo_portal import PortalProcess, portal_process

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "workflows" / "examples" / "change_of_address.yaml"
RABBITMQ_URL = os.environ.get("AUTOCLERK_TEST_BROKER", "amqp://guest:guest@127.0.0.1:5672//")


def need(condition: bool, reason: str) -> None:
    """Skip on a developer machine, fail under CI, when a real service is missing."""
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: integration services must be present)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium() -> str:
    from bots import BrowserNotFoundError, find_chromium

    try:
        return find_chromium(os.environ.get("AUTOCLERK_CHROMIUM_PATH"))
    except BrowserNotFoundError as exc:
        need(False, str(exc))
        raise


@pytest.fixture
def portal() -> Iterator[PortalProcess]:
    with portal_process() as running:
        yield running


def always_looking(folder: Path) -> Path:
    """The example workflow with its lookup run before every attempt (``when: always``), beside its part, in
    ``folder``."""
    import shutil

    shutil.copy(EXAMPLE.parent / "sign_in.yaml", folder / "sign_in.yaml")
    source = EXAMPLE.read_text(encoding="utf-8")
    head, rest = source.split("\nlookup:\n", 1)
    lookup, verify = rest.split("\nverify:\n", 1)  # the example verifies its submissions after the lookup
    steps = "".join(f"  {line}\n" if line else "\n" for line in lookup.splitlines())
    path = folder / "change_of_address.yaml"
    path.write_text(f"{head}\nlookup:\n  when: always\n  steps:\n{steps}\nverify:\n{verify}", encoding="utf-8")
    return path


def rabbitmqctl(*args: str, timeout: float = 120) -> str:
    """``rabbitmqctl`` on the shared node (``scripts/start-rabbitmq``)."""
    # The CLI starts epmd when none runs; this keeps that one on loopback too, as scripts/start-rabbitmq does.
    env = {**os.environ, "ERL_EPMD_ADDRESS": "127.0.0.1"}
    result = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=timeout, env=env)
    assert result.returncode == 0, f"rabbitmqctl {' '.join(args)} failed: {result.stderr.strip()}"
    return result.stdout


def with_vhost(url: str, vhost: str) -> str:
    """The same server as ``url``, another virtual host."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}/{vhost}"


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[str]:
    """The shared RabbitMQ. Each test process of a parallel run (``pytest -n``) has a virtual host of its own, so
    one process's workers never take another's messages; a plain run uses the URL as it is."""
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=2).close()
    except OSError:
        need(False, "RabbitMQ is not listening on 127.0.0.1:5672")
    process = os.environ.get("PYTEST_XDIST_WORKER")
    if process is None:
        yield RABBITMQ_URL
        return
    from sqlalchemy.engine import make_url

    vhost = f"autoclerk-tests-{process}"
    if vhost in rabbitmqctl("list_vhosts", "name").split():  # left by a run that was killed
        rabbitmqctl("delete_vhost", vhost)
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, str(make_url(RABBITMQ_URL).username or "guest"), ".*", ".*", ".*")
    try:
        yield with_vhost(RABBITMQ_URL, vhost)
    finally:
        rabbitmqctl("delete_vhost", vhost)


POSTGRES_URL = os.environ.get("AUTOCLERK_TEST_POSTGRES", "postgresql+psycopg://autoclerk:autoclerk@127.0.0.1:5432/autoclerk")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL database (dropped afterwards) on the server ``scripts/start-postgres`` runs."""
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    try:
        admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        admin.connect().close()
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server
        need(False, f"PostgreSQL is not reachable at {make_url(POSTGRES_URL).render_as_string()} ({type(exc).__name__})")
    name = f"autoclerk_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        try:
            _drop_database(admin, name)
        finally:
            admin.dispose()


def _drop_database(admin: Engine, name: str, timeout_s: float = 30) -> None:
    """Drop a test database, ending its sessions. An autovacuum worker on it belongs to no role, so a
    non-superuser may end it only with pg_signal_backend (``scripts/start-postgres`` grants it); on a server
    where the role lacks it, wait for the autovacuum worker to finish instead."""
    import time

    from sqlalchemy import text
    from sqlalchemy.exc import ProgrammingError

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        except ProgrammingError as exc:
            if "pg_signal_backend" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture(autouse=True)
def _portal_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOCLERK_SECRET_PORTAL_PASSWORD", "demo-password")


def autoclerk(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
              timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a subprocess (``python -m orchestrator`` is the ``autoclerk`` entry point)."""
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def wait_for_consumers(broker: str, count: int, timeout_s: float = 60) -> None:
    """Wait until ``count`` worker consumers listen on the work queue (worker start-up takes seconds)."""
    import time

    from kombu import Connection

    from orchestrator.queue import QUEUE

    deadline = time.monotonic() + timeout_s
    with Connection(broker) as conn:
        while time.monotonic() < deadline:
            try:
                if conn.default_channel.queue_declare(QUEUE, passive=True).consumer_count >= count:
                    return
            except Exception:  # noqa: BLE001 - the queue is not declared yet
                conn.close()
                conn.connect()
            time.sleep(0.1)
    raise AssertionError(f"{count} workers did not start consuming within {timeout_s:g} s")
