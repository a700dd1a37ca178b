"""A worker stalled (SIGSTOP) past its lease and then resumed: another worker has done its case meanwhile,
and the stale attempt's writes are refused, so the case is submitted once."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo_portal import PortalProcess
from tests.processes import stopped

from .chaos import stalled_pid
from .rig import FaultRig, fault_rig, record


@pytest.fixture
def pg_rig(tmp_path: Path, rabbitmq: str, portal: PortalProcess, chromium: str, postgres_url: str) -> Iterator[FaultRig]:
    with fault_rig(tmp_path, rabbitmq, portal, postgres_url) as made:
        yield made


def test_a_worker_stalled_past_its_lease_has_its_late_writes_refused(pg_rig: FaultRig) -> None:
    rig = pg_rig
    cases = rig.cases(seed=41, start=9500)
    # On PostgreSQL: SIGSTOP stops every thread, and on a SQLite ledger a thread stopped inside any write (a
    # sweep, a heartbeat, a step's fingerprint being kept) holds the one write lock, so no other worker could
    # claim anything until SIGCONT (it happened in CI, twice); on PostgreSQL a stopped writer holds only its own
    # rows. The stalled worker neither sweeps before it stalls (its first sweep is minutes away) nor keeps
    # fingerprints (it would be stopped inside that write, just before its submit); the other worker sweeps,
    # and republishes the stalled case when its lease runs out.
    stalled = rig.start_worker(fault="stall_before_submit", concurrency=1,
                               env={"AUTOCLERK_SWEEP_INTERVAL_S": "300", "AUTOCLERK_HEALING": "false"})
    rig.wait_for_consumers(1)
    with rig.run_in_background(cases) as run:
        rig.wait(lambda: stalled_pid(rig.marker) is not None, 300, "the worker stalling before its submit")
        pid = stalled_pid(rig.marker)
        assert pid is not None
        was_stopped = stopped(pid)
        held = [ref for ref, st, owner, _ in rig.rows() if st == "in_progress" and owner and owner.endswith(f":{pid}")]
        stopped_at = time.monotonic()
        rig.start_worker()  # takes the stalled case over once its lease runs out
        rig.wait(lambda: all(st == "done" for ref, st, _, _ in rig.rows() if ref in held), 180,
                 "the other worker doing the stalled case")
        stalled.send_signal(signal.SIGCONT)
        rig.wait(lambda: "stale attempt" in rig.worker_logs(), 120, "the resumed attempt being refused")
        summary = rig.finish(run)
    verdict = rig.verdict(cases)
    record("worker SIGSTOP past its lease, then SIGCONT", verdict, confirmed=was_stopped and len(held) == 1,
           recover_s=time.monotonic() - stopped_at)
    assert summary["unfinished"] == 0
