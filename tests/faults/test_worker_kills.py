"""kill -9 of a worker at the three moments that matter, and of every worker at once.

The worker kills itself at a named fault point (``orchestrator/queue/faults.py``): exactly what a kill -9 from
outside at that instant would do, without racing to hit the instant. The oracle then holds the run to
nothing lost, nothing submitted twice, nothing unexpected.
"""

from __future__ import annotations

import time

import pytest

from .rig import FaultRig, record

EXPECTED = {
    # the ledger says the attempt may submit; it did not: the lookup finds nothing and the next attempt submits
    "before_submit": "a later attempt looks the case up, finds no submission and submits once",
    # the portal accepted the submit; the ledger does not know: the lookup finds it and the case is done, not resubmitted
    "after_submit": "a later attempt looks the case up, finds the submission and records it without submitting",
    # the ledger recorded the outcome; the broker never got the acknowledgement: the redelivery finds the case done
    "after_commit": "the redelivered message finds the case done and is acknowledged without work",
}


@pytest.mark.parametrize("point", list(EXPECTED))
def test_a_worker_killed_at_a_fault_point_loses_nothing_and_submits_nothing_twice(rig: FaultRig, point: str) -> None:
    cases = rig.cases(seed=21, start={"before_submit": 1000, "after_submit": 2000, "after_commit": 3000}[point])
    doomed = rig.start_worker(fault=point)
    rig.wait_for_consumers(1)
    with rig.run_in_background(cases) as run:
        rig.wait(lambda: doomed.poll() is not None, 300, f"the worker reaching {point}")
        killed_at = time.monotonic()
        confirmed = doomed.returncode == -9 and rig.marker.read_text().startswith(point)
        rig.start_worker()
        summary = rig.finish(run)
        recover_s = time.monotonic() - killed_at
    verdict = rig.verdict(cases)
    record(f"worker kill -9 {point.replace('_', ' ')}", verdict, confirmed=confirmed, recover_s=recover_s)
    assert summary["failed"] == 0 and summary["unfinished"] == 0
    assert verdict.recovered >= 1 if point != "after_commit" else True, EXPECTED[point]
    if point == "after_submit":
        assert "earlier submission found" in rig.worker_logs(), EXPECTED[point]


def test_every_worker_killed_mid_run_and_restarted_loses_nothing_and_submits_nothing_twice(rig: FaultRig) -> None:
    cases = rig.cases(seed=22, start=4000)
    first = [rig.start_worker(), rig.start_worker()]
    rig.wait_for_consumers(2)
    with rig.run_in_background(cases) as run:
        rig.wait(lambda: rig.count("done") >= 2 and rig.count("in_progress") >= 1, 300, "work in flight")
        for worker in first:
            rig.kill(worker)
        held = rig.count("in_progress")
        killed_at = time.monotonic()
        rig.start_worker()
        rig.start_worker()
        summary = rig.finish(run)
        recover_s = time.monotonic() - killed_at
    verdict = rig.verdict(cases)
    record("every worker kill -9 mid-run, restarted", verdict, confirmed=held >= 1, recover_s=recover_s,
           held_when_killed=held)
    assert summary["failed"] == 0 and verdict.recovered >= 1


def test_a_worker_killed_after_the_submit_of_a_cases_last_attempt_leaves_the_case_done_not_failed(
        rig: FaultRig) -> None:
    # One attempt a case: the attempt the kill cuts short is the last. The case must not reach a person as
    # failed, who would do it again by hand: the attempt is given back (a worker's death is not the case's
    # doing), and the next attempt's look at the target system finds the submission and records it.
    workflow = rig.example(max_attempts=1)
    cases = rig.cases(1, seed=23, start=5000)
    doomed = rig.start_worker(fault="after_submit")
    rig.wait_for_consumers(1)
    with rig.run_in_background(cases, workflow=workflow) as run:
        rig.wait(lambda: doomed.poll() is not None, 300, "the worker reaching after_submit")
        confirmed = doomed.returncode == -9 and rig.marker.read_text().startswith("after_submit")
        rig.start_worker()
        summary = rig.finish(run)
    verdict = rig.verdict(cases)
    assert confirmed, "the worker died after the submit of a case's only attempt"
    assert verdict.ok and verdict.recovered == 1, verdict.details
    assert summary["failed"] == 0 and summary["done"] == 1
    assert "earlier submission found" in rig.worker_logs()
