"""The target system misbehaving: a full outage for a while (cases wait and resume without spending their
attempts), a burst of 5xx answers to some of its pages while it still answers (retried in place, within the
attempt), hanging requests, and every sign-in session ended at once mid-run."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from .rig import FaultRig, record


def _knobs(rig: FaultRig, **values: object) -> None:
    answer = httpx.put(f"{rig.portal.url}/api/faults", json=values, timeout=10)
    assert answer.status_code == 200, answer.text


def _events(rig: FaultRig, detail: str) -> int:
    with sqlite3.connect(rig.ledger_path, timeout=30) as db:
        return db.execute("select count(*) from transaction_events where detail = ?", (detail,)).fetchone()[0]


RETRIED = '"event": "server error retried in place"'


def _retried(rig: FaultRig) -> int:
    """The workers' log lines of a 5xx retried in place."""
    return rig.worker_logs().count(RETRIED)


def _while_two_workers_run(rig: FaultRig, cases: Path, *, error_rate: float, seen: Callable[[], int], at_least: int,
                           lasts_s: float, worker_env: dict[str, str] | None = None) -> tuple[dict, float]:
    """Two workers (``worker_env`` added to their settings); once two cases are done, ``error_rate`` of the
    portal's pages answer 503 until ``seen()`` counts ``at_least`` and ``lasts_s`` more have passed. Returns the
    run's summary and when the pages answered again."""
    rig.start_worker(env=worker_env)
    rig.start_worker(env=worker_env)
    rig.wait_for_consumers(2)
    with rig.run_in_background(cases) as run:
        rig.wait(lambda: rig.count("done") >= 2, 300, "two cases done")
        _knobs(rig, error_rate=error_rate)
        rig.wait(lambda: seen() >= at_least, 120, f"{at_least} signs of the fault")
        time.sleep(lasts_s)  # the fault lasts a while on purpose: past the backoff of a case's attempts
        _knobs(rig, error_rate=0.0)
        ended = time.monotonic()
        return rig.finish(run), ended


def test_a_full_outage_of_the_target_system_makes_cases_wait_without_spending_their_attempts(rig: FaultRig) -> None:
    cases = rig.cases(seed=51, start=10_000)
    summary, restored = _while_two_workers_run(rig, cases, error_rate=1.0, seen=lambda: _events(rig, "TargetUnavailable"),
                                               at_least=3, lasts_s=5)
    verdict = rig.verdict(cases)
    waited = _events(rig, "TargetUnavailable")
    record("target system full outage (every page 503)", verdict, confirmed=waited >= 3,
           recover_s=time.monotonic() - restored, deferred_attempts=waited)
    assert summary["failed"] == 0 and summary["done"] == len(cases.read_text().splitlines()) - 1, \
        "no case spent its attempts on the outage"


def test_a_burst_of_server_errors_on_some_pages_is_retried_in_place_and_only_a_submits_5xx_spends_an_attempt(
        rig: FaultRig) -> None:
    cases = rig.cases(seed=54, start=13_000)
    # One page in five answers 503; the others, and the outage probe, answer. Retries in place are bounded
    # (3 by default), and a 503 on the sign-in form's POST starts the steps again, where each request may meet
    # another 503. So the workers retry 8 times, with short waits (within the rig's 15 s budget): a case then
    # rightly spends its attempt far less often than once in a hundred runs (at 35% with 3: seen in CI).
    summary, ended = _while_two_workers_run(rig, cases, error_rate=0.2, seen=lambda: _retried(rig), at_least=4,
                                            lasts_s=4, worker_env={"AUTOCLERK_SERVER_ERROR_RETRIES": "8",
                                                                   "AUTOCLERK_SERVER_ERROR_WAIT_S": "0.02"})
    verdict = rig.verdict(cases)
    retried, outage = _retried(rig), _events(rig, "TargetUnavailable")
    record("target system 5xx burst (20% of pages 503, the system still answers)", verdict, confirmed=retried >= 4,
           recover_s=time.monotonic() - ended, retried_in_place=retried, outage_waits=outage)
    assert summary["unfinished"] == 0
    with sqlite3.connect(rig.ledger_path, timeout=30) as db:
        submitted = set(db.execute("select transaction_id, attempt from transaction_events where state = 'effect_started'"))
        spent = [(tx, past["attempt"]) for tx, history in db.execute("select id, history from transactions")
                 for past in json.loads(history) if past["error_class"] == "TargetServerError"]
    # The page loads that submit nothing were retried in place; a 503 on a submit (or on the page after it) is
    # looked up before anything is submitted again: the oracle above found none lost or doubled.
    assert all(attempt in submitted for attempt in spent), "a server error before any submit spent an attempt"


def _timed_out_attempts(rig: FaultRig) -> int:
    """Attempts that ended because a page of the target system did not answer in time: those recorded as
    ``StepTimeout``, and those whose system the outage probe then found down (``TargetUnavailable``: a probe
    that met a hanging request too) after a ``StepTimeout`` (their detail names the bot's error class)."""
    with sqlite3.connect(rig.ledger_path, timeout=30) as db:
        return sum(1 for (history,) in db.execute("select history from transactions") for past in json.loads(history)
                   if past["error_class"] == "StepTimeout" or "StepTimeout:" in (past.get("error_detail") or ""))


def test_hanging_requests_time_out_and_the_cases_are_done_later(rig: FaultRig) -> None:
    cases = rig.cases(seed=52, start=11_000)
    rig.start_worker()
    rig.start_worker()
    rig.wait_for_consumers(2)
    _knobs(rig, hang_rate=0.15, hang_s=600)
    with rig.run_in_background(cases) as run:
        # The hang is seen only once an attempt has ended on it: the ledger's attempt history says StepTimeout.
        rig.wait(lambda: _timed_out_attempts(rig) >= 1, 300, "an attempt timing out on a hanging request")
        _knobs(rig, hang_rate=0.0)
        restored = time.monotonic()
        summary = rig.finish(run)
    verdict = rig.verdict(cases)
    timeouts = _timed_out_attempts(rig)
    record("target system hanging requests", verdict, confirmed=timeouts >= 1, recover_s=time.monotonic() - restored,
           timeouts=timeouts, step_timeouts=_events(rig, "StepTimeout"), outage_waits=_events(rig, "TargetUnavailable"))
    assert summary["unfinished"] == 0


def test_every_session_ended_mid_run_is_renewed_and_nothing_is_submitted_twice(rig: FaultRig) -> None:
    cases = rig.cases(seed=53, start=12_000)
    rig.start_worker()
    rig.wait_for_consumers(1)
    with rig.run_in_background(cases) as run:
        for done in (2, 5):  # the legacy system restarts twice: every sign-in session ends at once
            rig.wait(lambda: rig.count("done") >= done, 300, f"{done} cases done")
            assert httpx.delete(f"{rig.portal.url}/api/sessions", timeout=10).json()["sessions"] == 0
        ended = time.monotonic()
        summary = rig.finish(run)
    sign_ins = httpx.get(f"{rig.portal.url}/api/sessions", timeout=10).json()["logins"]
    verdict = rig.verdict(cases)
    record("target system ends every session mid-run (twice)", verdict, confirmed=sign_ins >= 3,
           recover_s=time.monotonic() - ended, sign_ins=sign_ins)
    assert summary["unfinished"] == 0 and summary["failed"] == 0
