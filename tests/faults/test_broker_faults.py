"""RabbitMQ under faults mid-run: stopped and started, its Erlang VM killed and restarted, every connection
closed, and the disk alarm raised so that publishers block. Each time the oracle holds the run to
nothing lost, nothing submitted twice."""

from __future__ import annotations

import time
import zlib
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .rig import FaultRig, broker_reachable, rabbitmqctl, record
from .servers import PrivateRabbitmq


def _mid_run(rig: FaultRig, name: str, inject, *, workers: int = 2, **extra: object) -> None:  # type: ignore[no-untyped-def]
    cases = rig.cases(seed=zlib.crc32(name.encode()) % 1000, start=5000)
    for _ in range(workers):
        rig.start_worker()
    rig.wait_for_consumers(workers)
    with rig.run_in_background(cases) as run:
        rig.wait(lambda: rig.count("done") >= 2, 300, "two cases done")
        struck = time.monotonic()
        confirmed = inject()
        summary = rig.finish(run)
    verdict = rig.verdict(cases)
    record(name, verdict, confirmed=confirmed, recover_s=time.monotonic() - struck, **extra)
    assert summary["unfinished"] == 0


def test_rabbitmq_stopped_and_started_mid_run(rig: FaultRig) -> None:
    def inject() -> bool:
        rabbitmqctl("stop_app")
        gone = not broker_reachable(rig.broker)
        rabbitmqctl("start_app")
        rabbitmqctl("await_startup")
        return gone

    _mid_run(rig, "RabbitMQ stop_app / start_app mid-run", inject)


def test_rabbitmqs_erlang_vm_killed_and_restarted_mid_run(rig: FaultRig, fault_broker: PrivateRabbitmq) -> None:
    def inject() -> bool:
        fault_broker.kill()  # kill -9, and it returns once the port no longer answers
        gone = not broker_reachable(rig.broker)
        fault_broker.start()
        return gone  # the broker was seen to go away after its VM was killed

    _mid_run(rig, "RabbitMQ Erlang VM kill -9, restarted", inject)


def _connections(broker: str) -> set[str]:
    """The broker's connections to the rig's virtual host (the broker may serve others too)."""
    rows = (line.split("\t") for line in rabbitmqctl("list_connections", "vhost", "pid").splitlines())
    return {row[1] for row in rows if len(row) == 2 and row[0] == _vhost(broker)}


def _vhost(broker: str) -> str:
    return unquote(urlsplit(broker).path[1:]) or "/"


def test_every_broker_connection_closed_mid_run(rig: FaultRig) -> None:
    def inject() -> bool:
        before = _connections(rig.broker)
        rabbitmqctl("close_all_connections", "-p", _vhost(rig.broker), "fault injection")  # one vhost unless --global
        deadline = time.monotonic() + 30
        while (left := before & _connections(rig.broker)) and time.monotonic() < deadline:
            time.sleep(0.2)
        return len(before) >= 2 and not left  # both workers (and the run) were connected, and each was cut

    _mid_run(rig, "RabbitMQ close_all_connections mid-run", inject)


def test_the_disk_alarm_blocks_publishers_and_the_hand_off_waits_for_it(rig: FaultRig) -> None:
    cases = rig.cases(seed=31, start=9000)
    rig.start_worker()
    rig.wait_for_consumers(1)
    rabbitmqctl("set_disk_free_limit", "100000GB")  # more than any disk: the alarm goes off at once
    raised = time.monotonic()
    try:
        deadline = time.monotonic() + 30
        while "disk" not in (alarms := rabbitmqctl("eval", "rabbit_alarm:get_alarms().").lower()):
            assert time.monotonic() < deadline, f"the disk alarm was not raised: {alarms}"
            time.sleep(0.5)
        with rig.run_in_background(cases) as run:
            # The hand-off records every case; the broker takes no message while the alarm is on.
            rig.wait(lambda: len(rig.rows()) == len(Path(cases).read_text().splitlines()) - 1, 120, "every case recorded")
            time.sleep(3)  # the outage itself: nothing can be published meanwhile
            blocked_done = rig.count("done")
            rabbitmqctl("set_disk_free_limit", "50MB")
            summary = rig.finish(run)
    finally:
        rabbitmqctl("set_disk_free_limit", "50MB")
    verdict = rig.verdict(cases)
    record("RabbitMQ disk alarm (publishers blocked)", verdict, confirmed=blocked_done == 0,
           recover_s=time.monotonic() - raised)
    assert summary["unfinished"] == 0 and summary["failed"] == 0
