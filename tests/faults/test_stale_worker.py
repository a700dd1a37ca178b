"""A worker stalled (SIGSTOP) past its lease and then resumed: another worker has done its case meanwhile,
and the stale attempt's writes are refused, so the case is submitted once."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from .rig import FaultRig, record


def test_a_worker_stalled_past_its_lease_has_its_late_writes_refused(rig: FaultRig) -> None:
    cases = rig.cases(seed=41, start=9500)
    # The stalled worker does not sweep before it stalls (its first sweep is minutes away). SIGSTOP stops every
    # thread, and a sweep stopped inside its write would hold the SQLite ledger's write lock: no other worker
    # could claim anything until SIGCONT (it happened once in CI). The other worker sweeps, and republishes the
    # stalled case when its lease runs out.
    stalled = rig.start_worker(fault="stall_before_submit", concurrency=1, env={"AUTOCLERK_SWEEP_INTERVAL_S": "300"})
    rig.wait_for_consumers(1)
    with rig.run_in_background(cases) as run:
        rig.wait(lambda: rig.marker.exists(), 300, "the worker stalling before its submit")
        pid = int(rig.marker.read_text().split()[1])
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()[0]
        held = [ref for ref, st, owner, _ in rig.rows() if st == "in_progress" and owner and owner.endswith(f":{pid}")]
        stopped_at = time.monotonic()
        rig.start_worker()  # takes the stalled case over once its lease runs out
        rig.wait(lambda: all(st == "done" for ref, st, _, _ in rig.rows() if ref in held), 180,
                 "the other worker doing the stalled case")
        stalled.send_signal(signal.SIGCONT)
        rig.wait(lambda: "stale attempt" in rig.worker_logs(), 120, "the resumed attempt being refused")
        summary = rig.finish(run)
    verdict = rig.verdict(cases)
    record("worker SIGSTOP past its lease, then SIGCONT", verdict, confirmed=state == "T" and len(held) == 1,
           recover_s=time.monotonic() - stopped_at)
    assert summary["unfinished"] == 0
