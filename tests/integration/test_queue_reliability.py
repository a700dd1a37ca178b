"""The queue core under faults, with a real RabbitMQ, real workers, real Chromium and the demo portal.

Each test checks that its fault really happened, then that every transaction ended in exactly one
terminal state and that the portal holds exactly one submission per valid case.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from kombu import Connection

from demo_portal import PortalProcess, generate_cases
from orchestrator.celery_app import DEAD_LETTER_QUEUE, QUEUE
from tests.conftest import EXAMPLE, autoclerk, wait_for_consumers

FAST = {"AUTOCLERK_TRANSACTION_BUDGET_S": "20", "AUTOCLERK_LEASE_S": "25", "AUTOCLERK_SWEEP_INTERVAL_S": "1",
        "AUTOCLERK_RETRY_BASE_S": "0.5", "AUTOCLERK_STEP_TIMEOUT_MS": "5000"}
"""Short leases, so a killed worker's transactions come back within seconds, not minutes."""


class Rig:
    """A ledger, a broker, the portal, workers that can be killed, and ``autoclerk run`` in the background."""

    def __init__(self, tmp_path: Path, broker: str, portal: PortalProcess) -> None:
        self.tmp, self.broker, self.portal = tmp_path, broker, portal
        self.ledger_path = tmp_path / "ledger.db"
        self.common = ("--broker", broker, "--ledger", f"sqlite:///{self.ledger_path}", "--system", f"portal={portal.url}")
        self.env = {**os.environ, **FAST}
        self.workers: list[subprocess.Popen[bytes]] = []

    def start_worker(self, *extra: str) -> subprocess.Popen[bytes]:
        # A session of its own, so a kill -9 of the group takes its Chromium with it, as a dead host would.
        log = open(self.tmp / f"worker-{len(self.workers)}.log", "wb")  # noqa: SIM115 - owned by the process
        proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "worker", "--concurrency", "2", *self.common, *extra],
                                cwd=self.tmp, env=self.env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        log.close()
        self.workers.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL, "the worker really was killed"

    @contextmanager
    def run_in_background(self, cases: Path) -> Iterator[subprocess.Popen[str]]:
        proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "run", str(EXAMPLE), "--cases", str(cases),
                                 *self.common, "--json", "--timeout", "400"], cwd=self.tmp, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=30)

    def states(self) -> dict[str, str]:
        if not self.ledger_path.exists():
            return {}
        with sqlite3.connect(self.ledger_path, timeout=30) as db:
            try:
                return dict(db.execute("select case_ref, state from transactions").fetchall())
            except sqlite3.OperationalError:
                return {}  # not created yet

    def wait(self, condition, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert time.monotonic() < deadline, f"{what} did not happen within {timeout_s:g} s"
            time.sleep(0.2)

    def close(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    def check_once_each(self, cases: Path, summary: dict) -> None:
        """Every case terminal exactly once in the ledger; exactly one portal submission per valid case."""
        import csv

        rows = list(csv.DictReader(cases.read_text().splitlines()))
        states = self.states()
        assert sorted(states) == sorted(r["case_ref"] for r in rows)
        assert set(states.values()) <= {"done", "business_exception"}, states
        export = httpx.get(f"{self.portal.url}/api/export").json()
        submitted = [e["case_ref"] for e in export]
        assert len(submitted) == len(set(submitted)), "a case was submitted twice"
        assert sorted(submitted) == sorted(ref for ref, state in states.items() if state == "done")
        assert summary["unfinished"] == 0 and summary["failed"] == 0


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.fixture
def rig(tmp_path: Path, rabbitmq: str, portal: PortalProcess, chromium: str) -> Iterator[Rig]:
    made = Rig(tmp_path, rabbitmq, portal)
    yield made
    made.close()


def test_a_worker_killed_mid_run_and_restarted_loses_nothing_and_submits_nothing_twice(rig: Rig) -> None:
    cases = rig.tmp / "cases.csv"
    generate_cases(cases, 14, invalid_rate=0.0, seed=11, start=700)
    first = rig.start_worker()
    wait_for_consumers(rig.broker, 1)
    with rig.run_in_background(cases) as run:
        rig.wait(lambda: sum(s == "done" for s in rig.states().values()) >= 3, 180, "three cases done")
        rig.wait(lambda: "in_progress" in rig.states().values(), 60, "a case in progress")
        rig.kill(first)
        held = [ref for ref, state in rig.states().items() if state == "in_progress"]
        assert held, "the kill caught a case in progress"
        rig.start_worker()
        out, err = run.communicate(timeout=400)
    assert run.returncode == 0, err
    rig.check_once_each(cases, last_json(out))


def test_rabbitmq_stopped_and_started_mid_run_loses_nothing_and_submits_nothing_twice(rig: Rig) -> None:
    cases = rig.tmp / "cases.csv"
    generate_cases(cases, 12, invalid_rate=0.0, seed=12, start=720)
    rig.start_worker()
    wait_for_consumers(rig.broker, 1)
    with rig.run_in_background(cases) as run:
        rig.wait(lambda: sum(s == "done" for s in rig.states().values()) >= 2, 180, "two cases done")
        subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True, timeout=120)
        with pytest.raises(OSError):
            Connection(rig.broker, connect_timeout=2).connect()  # the fault is real: the broker is gone
        time.sleep(3)  # the outage itself: work in flight cannot be acknowledged meanwhile
        subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True, timeout=120)
        subprocess.run(["rabbitmqctl", "-q", "await_startup"], check=True, timeout=120)
        out, err = run.communicate(timeout=400)
    assert run.returncode == 0, err
    rig.check_once_each(cases, last_json(out))


def test_the_same_batch_handed_off_again_and_its_messages_published_twice_run_once(rig: Rig) -> None:
    cases = rig.tmp / "cases.csv"
    generate_cases(cases, 6, invalid_rate=0.0, seed=13, start=740)
    rig.start_worker()
    wait_for_consumers(rig.broker, 1)
    first = autoclerk("run", str(EXAMPLE), "--cases", str(cases), *rig.common, "--json", cwd=rig.tmp, env=FAST)
    assert first.returncode == 0, first.stderr
    from orchestrator import Ledger, Publisher, load_settings
    from orchestrator.celery_app import make_celery

    settings = load_settings(broker_url=rig.broker, ledger_url=f"sqlite:///{rig.ledger_path}")
    ledger = Ledger(settings.ledger_url)
    try:
        ids = [row[0] for row in sqlite3.connect(rig.ledger_path).execute("select id from transactions")]
        Publisher(make_celery(settings), ledger).publish(ids + ids)  # every message twice more
    finally:
        ledger.close()
    again = autoclerk("run", str(EXAMPLE), "--cases", str(cases), *rig.common, "--json", cwd=rig.tmp, env=FAST)
    assert again.returncode == 0 and last_json(again.stdout)["already_finished"] == 6
    rig.wait(lambda: _queue_depth(rig.broker, QUEUE) == 0, 60, "the duplicate messages consumed")
    rig.check_once_each(cases, last_json(again.stdout))


def test_a_poison_message_is_dead_lettered_and_the_batch_around_it_completes(rig: Rig) -> None:
    with Connection(rig.broker) as conn:
        conn.default_channel.queue_purge(DEAD_LETTER_QUEUE) if _exists(conn, DEAD_LETTER_QUEUE) else None
    cases = rig.tmp / "cases.csv"
    generate_cases(cases, 4, invalid_rate=0.0, seed=14, start=760)
    rig.start_worker()
    wait_for_consumers(rig.broker, 1)
    from orchestrator import load_settings
    from orchestrator.celery_app import TASK_NAME, make_celery

    app = make_celery(load_settings(broker_url=rig.broker))
    app.send_task(TASK_NAME, args=({"not": "transaction ids"}, "some-ledger"))  # ours in form, poison in content
    result = autoclerk("run", str(EXAMPLE), "--cases", str(cases), *rig.common, "--json", cwd=rig.tmp, env=FAST)
    assert result.returncode == 0, result.stderr
    rig.wait(lambda: _queue_depth(rig.broker, DEAD_LETTER_QUEUE) == 1, 60, "the poison message dead-lettered")
    with Connection(rig.broker) as conn:
        channel = conn.default_channel
        message = channel.message_to_python(channel.basic_get(DEAD_LETTER_QUEUE))
        assert message.decode()[0] == [{"not": "transaction ids"}, "some-ledger"]
        assert message.headers["x-first-death-reason"] == "rejected"
        message.ack()
    rig.check_once_each(cases, last_json(result.stdout))


def _exists(conn: Connection, queue: str) -> bool:
    try:
        conn.default_channel.queue_declare(queue, passive=True)
        return True
    except Exception:  # noqa: BLE001 - 404 NOT_FOUND closes the channel
        conn.close()
        conn.connect()
        return False


def _queue_depth(broker: str, queue: str) -> int:
    with Connection(broker) as conn:
        return int(conn.default_channel.queue_declare(queue, passive=True).message_count)
