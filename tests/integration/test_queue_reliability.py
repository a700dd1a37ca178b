"""The queue core with a real RabbitMQ, real workers, real Chromium and the demo portal: a batch handed off
again with every message published twice more, and a poison message dead-lettered.

A worker killed mid-run and RabbitMQ stopped mid-run are in the fault suite (``tests/faults``), under
its oracle.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kombu import Connection

from demo_portal import PortalProcess, generate_cases
from orchestrator.queue import DEAD_LETTER_QUEUE, QUEUE
from tests.conftest import EXAMPLE, autoclerk, wait_for_consumers
from tests.faults.oracle import last_json
from tests.faults.rig import FAST, FaultRig


class Rig(FaultRig):
    """The fault suite's rig, plus the exact check these tests make on the demo portal."""

    def states(self) -> dict[str, str]:
        return {ref: state for ref, state, _, _ in self.rows()}

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


@pytest.fixture
def rig(tmp_path: Path, rabbitmq: str, portal: PortalProcess, chromium: str) -> Iterator[Rig]:
    made = Rig(tmp_path, rabbitmq, portal)
    yield made
    made.close()


def test_the_same_batch_handed_off_again_and_its_messages_published_twice_run_once(rig: Rig) -> None:
    cases = rig.tmp / "cases.csv"
    generate_cases(cases, 6, invalid_rate=0.0, seed=13, start=740)
    rig.start_worker()
    wait_for_consumers(rig.broker, 1)
    first = autoclerk("run", str(EXAMPLE), "--cases", str(cases), *rig.common, "--json", cwd=rig.tmp, env=FAST)
    assert first.returncode == 0, first.stderr
    from orchestrator import Ledger, Publisher, load_settings
    from orchestrator.queue import make_celery

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
    from orchestrator.queue import TASK_NAME, make_celery

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
