"""The chaos run: one batch through several workers while faults drawn at random, by a seed, hit it.

``python -m tests.faults.chaos --seed S --cases N --minutes M`` (what ``autoclerk faults chaos`` runs from a
checkout). It starts its own RabbitMQ node and PostgreSQL cluster (``servers.py``: never the shared ones, nor
a broker or ledger named in the user's settings), the demo portal, and ``--workers`` workers; hands a batch
of N cases off with ``autoclerk run``; then, until the batch ends or M minutes pass, it waits a random gap
and injects the next fault of a shuffled deck (every fault once per deck). Each injection checks that its
fault really happened. The oracle (``oracle.py``) then counts lost, duplicated and unexpected cases.

Progress goes to stderr; the last line of stdout is one JSON object (see :func:`main`). Exit 0 when nothing
was lost, duplicated or unexpected and every fault was confirmed; 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from bots.processes import browser_processes
from demo_portal import portal_process
from tests.processes import command_line, stopped

from .oracle import drain_dead_letters, last_json, query
from .rig import FAST, FaultRig, broker_reachable
from .servers import PrivatePostgres, PrivateRabbitmq, private_servers

POINT_WAIT_S = 180
"""How long an armed worker may take to reach its fault point before the injection counts as unconfirmed."""
RETRIED = '"event": "server error retried in place"'
LOOKED_UP = '"event": "server error on a submit; the change is looked up in place"'
"""A worker's (JSON) log line of a 5xx page retried in place, within the attempt."""


def say(message: str) -> None:
    print(f"chaos: {message}", file=sys.stderr, flush=True)


class Chaos:
    """The faults, each a method that injects one and returns whether it really happened (``None``: the batch
    ended before the fault could strike, so it was not injected)."""

    def __init__(self, rig: FaultRig, rabbitmq: PrivateRabbitmq, postgres: PrivatePostgres, run: subprocess.Popen[str],
                 rng: random.Random, workers: list[subprocess.Popen[bytes]]) -> None:
        self.rig, self.rabbitmq, self.postgres, self.run, self.rng = rig, rabbitmq, postgres, run, rng
        self.workers = workers
        self.armed = 0
        self._retried_before = 0
        self.faults: dict[str, Callable[[], bool | None]] = {
            "worker kill -9 before submit": lambda: self._kill_at("before_submit"),
            "worker kill -9 after submit": lambda: self._kill_at("after_submit"),
            "worker kill -9 after commit": lambda: self._kill_at("after_commit"),
            "RabbitMQ restart (VM kill -9)": self.rabbitmq_restart,
            "RabbitMQ connections closed": self.rabbitmq_connections_closed,
            "PostgreSQL restart": self.postgres_restart,
            "PostgreSQL connections ended": self.postgres_connections_ended,
            "Chromium browser kill -9": lambda: self._kill_chromium(renderer=False),
            "Chromium renderer kill -9": lambda: self._kill_chromium(renderer=True),
            "target 5xx burst": lambda: self._portal_errors(0.35, self._retried_in_place, self.rng.uniform(3, 8)),
            "target outage": lambda: self._portal_errors(
                1.0, lambda since: self._events_since("TargetUnavailable", since), self.rng.uniform(5, 12)),
            "target ends every session": self.sessions_ended,
            "worker stalled past its lease": self.stalled_worker,
        }

    def over(self) -> bool:
        return self.run.poll() is not None

    def _wait(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        """Wait for ``condition``; False when the batch ended or the time ran out first."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            if self.over() or time.monotonic() > deadline:
                return condition()
            time.sleep(0.2)
        return True

    # -- workers -----------------------------------------------------------------------------------
    def _armed_worker(self, point: str, **env: str) -> tuple[subprocess.Popen[bytes], Path]:
        self.armed += 1
        marker = self.rig.tmp / f"marker-{self.armed}"
        return self.rig.start_worker(fault=point, concurrency=1, marker=marker, env=env), marker

    def _kill_at(self, point: str) -> bool | None:
        """An extra worker armed at ``point`` kills itself there (as a kill -9 at that instant would)."""
        worker, marker = self._armed_worker(point)
        if not self._wait(lambda: worker.poll() is not None, POINT_WAIT_S):
            self._end(worker)
            return None if self.over() else False
        return worker.returncode == -signal.SIGKILL and marker.read_text().startswith(point)

    def stalled_worker(self) -> bool | None:
        """An extra worker stops itself (SIGSTOP) before its submit; resumed after its lease ran out, its late
        writes are refused."""
        worker, marker = self._armed_worker("stall_before_submit", AUTOCLERK_SWEEP_INTERVAL_S="300")
        if not self._wait(marker.exists, POINT_WAIT_S):
            self._end(worker)
            return None if self.over() else False
        stopped = self._wait(lambda: stalled_pid(marker) is not None, 10)
        time.sleep(float(FAST["AUTOCLERK_LEASE_S"]) + 2)  # the stall itself: past the lease, on purpose
        os.killpg(worker.pid, signal.SIGCONT)
        self._end(worker)
        return stopped

    def _end(self, worker: subprocess.Popen[bytes]) -> None:
        try:
            os.killpg(worker.pid, signal.SIGCONT)
            os.killpg(worker.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass

    # -- RabbitMQ and PostgreSQL -------------------------------------------------------------------
    def rabbitmq_restart(self) -> bool:
        self.rabbitmq.kill()
        gone = not broker_reachable(self.rabbitmq.url)
        self.rabbitmq.start()
        return gone and broker_reachable(self.rabbitmq.url)

    def rabbitmq_connections_closed(self) -> bool | None:
        """Every connection to RabbitMQ (the workers' and the run's) closed at once: confirmed when there were some
        to close. Right after a RabbitMQ restart the clients are still connecting again, so it waits for one first
        (a seed once drew this fault a few seconds after a restart, and closed nothing)."""
        if not self._wait(lambda: len(self._rabbitmq_connections()) >= 1, 120):
            return None if self.over() else False
        before = self._rabbitmq_connections()
        self.rabbitmq.ctl("close_all_connections", "chaos run")
        return len(before) >= 1

    def _rabbitmq_connections(self) -> list[str]:
        """The Erlang pids of the node's client connections (``list_connections`` heads them with "pid")."""
        return [pid for pid in self.rabbitmq.ctl("list_connections", "pid").split() if pid.startswith("<")]

    def postgres_restart(self) -> bool:
        before = self.postgres.postmaster_pid()
        self.postgres.restart(self.rng.choice(("fast", "immediate")))
        return self.postgres.postmaster_pid() != before

    def postgres_connections_ended(self) -> bool:
        return self.postgres.terminate_connections("ledger") >= 1

    # -- Chromium ----------------------------------------------------------------------------------
    def _kill_chromium(self, *, renderer: bool) -> bool | None:
        def pick() -> int | None:
            alive = [w.pid for w in self.workers if w.poll() is None]
            for pid, marker in browser_processes().items():
                if marker.split(":")[0] in {str(p) for p in alive}:
                    cmdline = command_line(pid)
                    if cmdline and ("--type=renderer" in cmdline if renderer else "--type=" not in cmdline):
                        return pid
            return None

        found: list[int] = []

        def spotted() -> bool:
            pid = pick()
            if pid is not None:
                found.append(pid)
            return pid is not None

        if not self._wait(spotted, 60):
            return None if self.over() else False
        try:
            os.kill(found[0], signal.SIGKILL)
            return True
        except ProcessLookupError:
            return False

    # -- the target system -------------------------------------------------------------------------
    def _knobs(self, **values: object) -> None:
        httpx.put(f"{self.rig.portal.url}/api/faults", json=values, timeout=10).raise_for_status()

    def _events_since(self, detail: str, since: float) -> int:
        return int(query(self.rig.ledger, "select count(*) from transaction_events where detail = :d and at > :t",
                         {"d": detail, "t": since})[0][0])

    def _breakers_open(self) -> int:
        return int(query(self.rig.ledger, "select count(*) from breakers where state <> 'closed'")[0][0])

    def _retried_in_place(self, since: float) -> int:
        """The workers' log lines of a 5xx retried in place, or of a submit's 5xx looked up in place (a burst no
        longer reaches the ledger), since ``since``: counted as more lines than there were when the burst began."""
        return self._met_5xx() - self._retried_before

    def _met_5xx(self) -> int:
        logs = self.rig.worker_logs()
        return logs.count(RETRIED) + logs.count(LOOKED_UP)

    def _portal_errors(self, rate: float, seen: Callable[[float], int], lasts_s: float) -> bool | None:
        """``rate`` of the portal's pages answer 503 for ``lasts_s`` and until ``seen(since)`` shows the workers met
        them (a ledger event, or a 5xx retried in place)."""
        # A breaker still open from an earlier outage keeps every bot off the portal, so nothing could meet
        # this fault: it strikes once the breakers are closed (or after a minute, when it may go unconfirmed).
        self._wait(lambda: self._breakers_open() == 0, 60)
        since = time.time()
        self._retried_before = self._met_5xx()
        self._knobs(error_rate=rate)
        try:
            time.sleep(lasts_s)
            confirmed = self._wait(lambda: seen(since) >= 1, 60)
        finally:
            self._knobs(error_rate=0.0)
        return confirmed or (None if self.over() else False)

    def sessions_ended(self) -> bool | None:
        sessions = f"{self.rig.portal.url}/api/sessions"
        logins = httpx.get(sessions, timeout=10).json()["logins"]
        ended = httpx.delete(sessions, timeout=10).json()["sessions"] == 0
        renewed = self._wait(lambda: httpx.get(sessions, timeout=10).json()["logins"] > logins, 60)
        return (ended and renewed) or (None if self.over() else False)


def stalled_pid(marker: Path) -> int | None:
    """The pid of the worker that wrote ``marker`` at a ``stall_`` fault point, once the marker holds its whole line
    (the file is created before its line is written) and the process is stopped (state ``T``); else ``None``."""
    try:
        line = marker.read_text()
        pid = int(line.split()[1]) if line.endswith("\n") else None
    except (OSError, ValueError, IndexError):
        return None
    return pid if pid is not None and stopped(pid) else None


def cases_not_done(ledger: Path | str, limit: int = 50) -> list[str]:
    """One line for each case that did not end done (at most ``limit``): its state, error class, attempts and
    message, so a run says why, before its servers are deleted."""
    rows = query(ledger, "select case_ref, state, error_class, attempts, error_message from transactions "
                         f"where state <> 'done' order by case_ref limit {int(limit)}")
    return [f"{ref}: {state} ({error_class}) after {attempts} attempt(s): {(message or '')[:200]}"
            for ref, state, error_class, attempts, message in rows]


def attempts_of(ledger: Path | str, wanted: list[str]) -> list[str]:
    """For each case in ``wanted`` (those the oracle flagged, :attr:`Verdict.flagged`, then those not done), one
    line per attempt from its ledger history: how it ended and why, so a run that found something says what
    happened before its servers are deleted. Each case once, in the order of ``wanted``."""
    order = list(dict.fromkeys(wanted))
    refs = set(order)
    found: dict[str, list[str]] = {}
    for ref, state, attempts, history in query(ledger, "select case_ref, state, attempts, history from transactions"):
        if ref not in refs:
            continue
        lines = found[ref] = [f"{ref}: {state} after {attempts} attempt(s)"]
        for entry in json.loads(history or "[]"):
            why = f" {entry.get('error_class')}: {(entry.get('error') or '')[:160]}" if entry.get("error_class") else ""
            lines.append(f"  attempt {entry.get('attempt')}: {entry.get('outcome')} after "
                         f"{(entry.get('ended_at') or 0) - (entry.get('started_at') or 0):.1f} s{why}")
    return [line for ref in order for line in found.get(ref, [])]


def chaos_run(seed: int, cases: int, minutes: float, workers: int) -> dict[str, object]:
    rng = random.Random(seed)
    os.environ.setdefault("AUTOCLERK_SECRET_PORTAL_PASSWORD", "demo-password")  # the demo portal's sign-in
    tmp = Path(tempfile.mkdtemp(prefix="autoclerk-chaos-"))
    with private_servers() as (rabbitmq, postgres), portal_process() as portal:
        assert rabbitmq is not None and postgres is not None
        say(f"private RabbitMQ {rabbitmq.node} on 127.0.0.1:{rabbitmq.port}, private PostgreSQL on "
            f"127.0.0.1:{postgres.port}, portal {portal.url}")
        rig = FaultRig(tmp, rabbitmq.url, portal, ledger=postgres.create_database("ledger"))
        try:
            pool = [rig.start_worker() for _ in range(workers)]
            rig.wait_for_consumers(workers)
            path = rig.cases(cases, seed=seed)
            started = time.monotonic()
            deadline = started + minutes * 60
            with rig.run_in_background(path, timeout_s=int(minutes * 60) + 900) as run:
                chaos = Chaos(rig, rabbitmq, postgres, run, rng, pool)
                tally: dict[str, dict[str, int]] = {}
                deck: list[str] = []
                while not chaos.over() and time.monotonic() < deadline:
                    if not deck:
                        deck = list(chaos.faults)
                        rng.shuffle(deck)
                    gap_s = rng.uniform(1, 5)
                    if chaos._wait(lambda: time.monotonic() > deadline, gap_s) or chaos.over():
                        break
                    name = deck.pop()
                    try:
                        confirmed = chaos.faults[name]()
                    except Exception as exc:  # noqa: BLE001 - an injection that broke counts as unconfirmed
                        say(f"{name}: the injection failed ({type(exc).__name__}: {exc})")
                        confirmed = False
                    if confirmed is None:
                        say(f"{name}: the batch ended before it struck (not counted)")
                        continue
                    row = tally.setdefault(name, {"count": 0, "confirmed": 0})
                    row["count"] += 1
                    row["confirmed"] += bool(confirmed)
                    done = sum(1 for r in rig.rows() if r[1] == "done")
                    say(f"{name}: {'confirmed' if confirmed else 'NOT CONFIRMED'} ({done}/{cases} done)")
                stopped_by = "batch ended" if chaos.over() else "minutes passed"
                say(f"faults stopped ({stopped_by}){'' if run.poll() is not None else '; waiting for the batch to end'}")
                out, err = run.communicate(timeout=int(minutes * 60) + 960)
                makespan_s = time.monotonic() - started
                try:
                    summary = last_json(out)
                except (ValueError, IndexError):
                    say(f"autoclerk run ended with {run.returncode} and no summary: {err[-1500:]}")
                    summary = {"done": 0, "business_exception": 0, "failed": 0}
            verdict = rig.verdict(path)
            dead = len(drain_dead_letters(rabbitmq.url))
            not_done = cases_not_done(rig.ledger)
            # how each attempt ended, for the cases the oracle flagged and for those not done
            histories = attempts_of(rig.ledger, verdict.flagged)
            not_done_attempts = attempts_of(rig.ledger, [line.split(":", 1)[0] for line in not_done])
        finally:
            rig.close()
            shutil.rmtree(tmp, ignore_errors=True)
    return {"seed": seed, "cases": cases, "minutes": minutes, "workers": workers, "stopped_by": stopped_by,
            "faults": dict(sorted(tally.items())), "lost": verdict.lost, "duplicated": verdict.duplicated,
            "unexpected": verdict.unexpected, "recovered": verdict.recovered, "done": summary["done"],
            "exceptions": summary["business_exception"] + summary["failed"], "dead_letters": verdict.dead_letters + dead,
            "makespan_s": round(makespan_s, 1), "not_done": not_done, "not_done_attempts": not_done_attempts[:400],
            "details": verdict.details[:20] + histories[:200]}


def ok(result: dict) -> bool:
    faults = result["faults"]
    return (result["lost"] == result["duplicated"] == result["unexpected"] == 0
            and all(row["count"] == row["confirmed"] for row in faults.values()))


def main(argv: list[str] | None = None) -> int:
    """Run once; print one JSON object (``seed``, ``cases``, ``minutes``, ``workers``, ``stopped_by``,
    ``faults`` ({name: {count, confirmed}}), ``lost``, ``duplicated``, ``unexpected``, ``recovered``, ``done``,
    ``exceptions``, ``dead_letters``, ``makespan_s``, ``not_done``, ``not_done_attempts``, ``details``) as the
    last line of stdout."""
    parser = argparse.ArgumentParser(prog="python -m tests.faults.chaos")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--workers", type=int, default=3)
    args = parser.parse_args(argv)
    # A SIGTERM (CI's timeout, a person's kill) unwinds like Ctrl-C: the private servers are stopped and deleted.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    result = chaos_run(args.seed, args.cases, args.minutes, args.workers)
    print(json.dumps(result), flush=True)
    return 0 if ok(result) else 1


if __name__ == "__main__":
    sys.exit(main())
