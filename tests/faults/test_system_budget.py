"""A target system's budget across separate workers: three worker processes, six bots, one budget in the
ledger (at most 2 sessions at once, at most 12 transactions a minute), and the demo portal counting what it
sees (``GET /api/load``). Neither count may pass its limit.

The run has two phases, so that each limit is the one that binds in one of them:
- slow pages (the portal's latency knob): a transaction takes long, more bots want a session than the
  budget has, and the portal must see no more than 2 sessions at once, and see 2;
- fast pages: bots could start many more transactions a minute than the budget allows, and the portal
  must see no more than 12 sessions start in any minute of its clock, and see 12.
The fast phase starts once every worker has done a case (its browser is up, so a start reaches the portal
within moments of taking its rate token) and lasts long enough to cover a whole minute of the clock.
"""

from __future__ import annotations

import json
import sqlite3

import httpx
import pytest

from .rig import SIZE, FaultRig, record

LIMITS = {"sessions": 2, "per_minute": 12}
CASES = 96 if SIZE == "full" else 36
"""Enough for the fast phase to keep the rate budget spent for two minutes and more (a whole minute of the
clock lies within it)."""
SLOW_PAGE_MS = 2500
WORKERS = 3
BUDGET_ENV = {
    "AUTOCLERK_SYSTEM_LIMITS": json.dumps({"portal": LIMITS}),
    # Slow pages make a transaction long: its budget and lease grow to match (six pages of 2.5 s).
    "AUTOCLERK_TRANSACTION_BUDGET_S": "40", "AUTOCLERK_LEASE_S": "45",
    # A bot gives up waiting for the budget after 10 s and its case waits, with no attempt spent.
    "AUTOCLERK_BUDGET_WAIT_S": "10",
    # A slow page on a busy machine (CI's two cores run the three workers' browsers) is not a hang.
    "AUTOCLERK_STEP_TIMEOUT_MS": "15000", "AUTOCLERK_NAVIGATION_TIMEOUT_MS": "20000",
}
RUN_S = 1200
"""The longest the run may take: the fast phase alone takes CASES / per_minute minutes at best."""


def _load(rig: FaultRig) -> dict:
    return httpx.get(f"{rig.portal.url}/api/load", timeout=10).json()


def _knobs(rig: FaultRig, **values: object) -> None:
    httpx.put(f"{rig.portal.url}/api/faults", json=values, timeout=10).raise_for_status()


def _finished(rig: FaultRig) -> list[list[dict]]:
    """The ``transaction finished`` lines of each worker process's own log."""
    out = []
    for index in range(WORKERS):
        lines = (rig.tmp / f"worker-{index}.log").read_text(errors="replace").splitlines()
        out.append([e for e in (json.loads(line) for line in lines if line.startswith("{"))
                    if e.get("event") == "transaction finished"])
    return out


def _done_per_worker(rig: FaultRig) -> list[int]:
    return [sum(1 for e in finished if e.get("outcome") == "done") for finished in _finished(rig)]


def _workers_at_once(rig: FaultRig) -> int:
    """The most worker processes that were working on a case at the same moment: the times of each case's
    successful attempt from the ledger's attempt history, its worker from the worker's log."""
    worker_of = {e["case_ref"]: index for index, finished in enumerate(_finished(rig))
                 for e in finished if e.get("outcome") == "done"}
    edges: list[tuple[float, int, int]] = []  # (time, +1 start / -1 end, worker)
    with sqlite3.connect(rig.ledger_path, timeout=30) as db:
        for ref, history in db.execute("select case_ref, history from transactions"):
            for past in json.loads(history):
                if past["outcome"] == "done" and ref in worker_of:
                    edges += [(past["started_at"], 1, worker_of[ref]), (past["ended_at"], -1, worker_of[ref])]
    busy = [0] * WORKERS
    most = 0
    for _, step, worker in sorted(edges, key=lambda edge: (edge[0], edge[1])):  # an end before a start at one instant
        busy[worker] += step
        most = max(most, sum(1 for n in busy if n > 0))
    return most


def _deferred(rig: FaultRig) -> int:
    """Attempts a worker handed back because the budget stayed spent for its whole wait."""
    with sqlite3.connect(rig.ledger_path, timeout=30) as db:
        return db.execute("select count(*) from transaction_events where detail = 'BudgetUnavailable'").fetchone()[0]


@pytest.mark.timeout(2 * RUN_S)  # about 4 minutes on a quiet 2-core machine; the fast phase alone takes 3
def test_three_workers_share_a_systems_budget_and_the_portal_never_sees_more_sessions_or_starts(
        rig: FaultRig) -> None:
    cases = rig.cases(CASES, seed=71, start=60_000)
    _knobs(rig, latency_ms=SLOW_PAGE_MS)
    for _ in range(WORKERS):
        rig.start_worker(concurrency=2, env=BUDGET_ENV)
    rig.wait_for_consumers(WORKERS)
    httpx.delete(f"{rig.portal.url}/api/load", timeout=10).raise_for_status()
    with rig.run_in_background(cases, timeout_s=RUN_S) as run:
        rig.wait(lambda: min(_done_per_worker(rig)) >= 1 and _load(rig)["sessions_peak"] >= LIMITS["sessions"], 600,
                 "every worker doing a case while the portal is slow, and the portal seeing the session limit reached")
        slow = _load(rig)
        _knobs(rig, latency_ms=0)
        # The minutes counted from here are the fast phase's: sessions started while pages were slow are not.
        httpx.delete(f"{rig.portal.url}/api/load", timeout=10).raise_for_status()
        summary = rig.finish(run, timeout_s=RUN_S)
    fast = _load(rig)
    done = _done_per_worker(rig)
    verdict = rig.verdict(cases)
    peak = max(slow["sessions_peak"], fast["sessions_peak"])
    busiest = fast["sessions_started_busiest_minute"]
    at_once = _workers_at_once(rig)
    # Confirmed only if every worker did cases, at least two worker processes worked at the same time (the
    # budget was shared across processes: with two sessions allowed, a third at once is not guaranteed on a
    # busy machine, where CI once saw two), and the portal really saw each limit reached.
    confirmed = (min(done) >= 1 and at_once >= 2 and slow["sessions_peak"] >= LIMITS["sessions"]
                 and busiest >= LIMITS["per_minute"])
    record(f"system budget across {WORKERS} workers (at most {LIMITS['sessions']} sessions, "
           f"{LIMITS['per_minute']} a minute)", verdict, confirmed=confirmed, recover_s=None,
           sessions_peak=peak, sessions_started_busiest_minute=busiest,
           requests_busiest_minute=fast["requests_busiest_minute"], done_per_worker=done, workers_at_once=at_once,
           budget_waits=_deferred(rig))
    assert summary["unfinished"] == 0 and summary["failed"] == 0
    assert peak <= LIMITS["sessions"], f"the portal saw {peak} bot sessions at once: {slow} then {fast}"
    assert busiest <= LIMITS["per_minute"], f"the portal saw {busiest} sessions start in one minute: {fast}"
