"""A full outage of the target system during a batch, with its circuit breaker: while the breaker is open no
case is claimed, no attempt is spent and no page of the system is asked for (no browser works on it); the
batch finishes once the system is back, nothing lost or submitted twice.

The outage is the demo portal's ``outage`` knob: every page and ``/healthz`` answer 503 while ``/`` still
answers 200, so only the health page (``AUTOCLERK_SYSTEM_HEALTH``) shows the system down.
"""

from __future__ import annotations

import sqlite3
import time

import httpx

from orchestrator.queue.execution import CIRCUIT_OPEN

from .rig import FaultRig, record

BREAKER = {"AUTOCLERK_SYSTEM_HEALTH": '{"portal": "/healthz"}', "AUTOCLERK_BREAKER_THRESHOLD": "2",
           "AUTOCLERK_BREAKER_OPEN_S": "4"}


def _ledger(rig: FaultRig, sql: str) -> tuple:
    with sqlite3.connect(rig.ledger_path, timeout=30) as db:
        try:
            return db.execute(sql).fetchone() or ()
        except sqlite3.OperationalError:  # the ledger is not migrated yet
            return ()


def _breaker(rig: FaultRig) -> tuple:
    """``(state, probe_at)`` of the portal's breaker (empty before it counted a failure)."""
    return _ledger(rig, "select state, probe_at from breakers where system = 'portal'")


def _pages(rig: FaultRig) -> int:
    return int(httpx.get(f"{rig.portal.url}/api/load", timeout=10).json()["requests"])


def _outage(rig: FaultRig, on: bool) -> None:
    httpx.put(f"{rig.portal.url}/api/faults", json={"outage": int(on)}, timeout=10).raise_for_status()


def test_an_open_breaker_claims_no_case_spends_no_attempt_and_asks_no_page_until_the_system_is_back(
        rig: FaultRig) -> None:
    rig.env.update(BREAKER)
    cases = rig.cases(seed=61, start=16_000)
    rig.start_worker()
    rig.start_worker()
    rig.wait_for_consumers(2)
    with rig.run_in_background(cases) as run:
        rig.wait(lambda: rig.count("done") >= 2, 300, "two cases done")
        _outage(rig, True)
        try:
            rig.wait(lambda: _breaker(rig)[:1] == ("open",), 120, "the breaker opening")
            rig.wait(lambda: rig.count("in_progress") == 0, 120, "the attempts in flight when it opened ending")
            # From here on the breaker holds every case back: measure a whole open period and a failed probe.
            pages, attempts = _pages(rig), _ledger(rig, "select sum(attempts) from transactions")[0]
            first_probe_at = _breaker(rig)[1]
            rig.wait(lambda: _breaker(rig)[:1] == ("open",) and _breaker(rig)[1] > first_probe_at, 60,
                     "a half-open probe finding the system still down")
            rig.wait(lambda: rig.count("retry_scheduled") > 0 and _ledger(
                rig, f"select count(*) from transactions where error_class = '{CIRCUIT_OPEN}'")[0] > 0, 60,
                     "cases deferred by the open breaker")
            assert rig.count("in_progress") == 0, "no case was claimed while the breaker was open"
            assert _pages(rig) == pages, "no page of the system was asked for while the breaker was open"
            assert _ledger(rig, "select sum(attempts) from transactions")[0] == attempts, \
                "no attempt was spent while the breaker was open"
            message = _ledger(rig, f"select error_message from transactions where error_class = '{CIRCUIT_OPEN}'")[0]
            assert message.startswith("The target system portal is not answering, so no case for it is started")
        finally:
            _outage(rig, False)
        restored = time.monotonic()
        summary = rig.finish(run)
    verdict = rig.verdict(cases)
    deferred = _ledger(rig, "select count(*) from transaction_events where detail like 'The target system portal%'")[0]
    record("target system outage behind a holding page (circuit breaker open)", verdict, confirmed=deferred > 0,
           recover_s=time.monotonic() - restored, deferred_by_breaker=deferred)
    assert _breaker(rig)[:1] == ("closed",), "the probe found the system back and closed the breaker"
    assert summary["failed"] == 0 and summary["done"] == len(cases.read_text().splitlines()) - 1
