"""What every fault test stands on: a ledger, RabbitMQ, the demo portal, workers that can be killed or
stopped (with a fault point armed), ``autoclerk run`` in the background, and the report row.

Every helper that injects a fault checks that the fault really happened (a process really died with
SIGKILL, the broker really refused connections, the alarm really was raised).
"""

from __future__ import annotations

import json
import os
import signal
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TypeVar

import httpx

from demo_portal import Faults, PortalProcess
from orchestrator.errors import EXIT_FAILED
from tests.conftest import EXAMPLE, wait_for_consumers

from .oracle import Verdict, accepted_refs, check, drain_dead_letters, last_json, query
from .servers import PrivateRabbitmq

SIZE = os.environ.get("AUTOCLERK_FAULTS_SIZE", "quick")
"""``quick`` (CI: a dozen browser transactions per fault) or ``full`` (``autoclerk faults report``: hundreds)."""
BROWSER_CASES = 200 if SIZE == "full" else 12
FAST = {"AUTOCLERK_TRANSACTION_BUDGET_S": "15", "AUTOCLERK_LEASE_S": "16", "AUTOCLERK_SWEEP_INTERVAL_S": "1",
        "AUTOCLERK_RETRY_BASE_S": "0.5", "AUTOCLERK_RETRY_MAX_S": "4", "AUTOCLERK_STEP_TIMEOUT_MS": "6000",
        "AUTOCLERK_NAVIGATION_TIMEOUT_MS": "8000", "AUTOCLERK_LOG_JSON": "true", "AUTOCLERK_LOG_LEVEL": "INFO"}
"""Short leases, so a killed or stalled worker's transactions come back within seconds, not minutes."""


BROKER: PrivateRabbitmq | None = None
"""The fault suite's own RabbitMQ node while its session runs (``conftest.fault_broker``): the faults stop,
kill and reconfigure it, never the shared node other tests (and other test processes) use."""


def rabbitmqctl(*args: str, timeout: float = 120) -> str:
    """``rabbitmqctl`` on the fault suite's own node."""
    assert BROKER is not None, "the fault suite's RabbitMQ node is running (the fault_broker fixture)"
    return BROKER.ctl(*args, timeout=timeout)


R = TypeVar("R", bound="FaultRig")


@contextmanager
def fault_rig(tmp: Path, broker: str, portal: PortalProcess, ledger: str | None = None, *,
              kind: type[R] | None = None) -> Iterator[R]:
    """A :class:`FaultRig` (or the subclass ``kind``), closed at the end, on a portal with every fault knob off
    (a test that failed mid-fault leaves its knobs set)."""
    httpx.put(f"{portal.url}/api/faults", json=asdict(Faults()), timeout=10).raise_for_status()
    made = (kind or FaultRig)(tmp, broker, portal, ledger)
    try:
        yield made
    finally:
        made.close()


def broker_reachable(broker: str) -> bool:
    from kombu import Connection

    try:
        Connection(broker, connect_timeout=2).connect().close()
        return True
    except OSError:
        return False


class FaultRig:
    """One fault test's world: a SQLite ledger in ``tmp``, or the ledger at ``ledger`` (a SQLAlchemy URL)."""

    def __init__(self, tmp: Path, broker: str, portal: PortalProcess, ledger: str | None = None) -> None:
        self.tmp, self.broker, self.portal = tmp, broker, portal
        self.ledger_path = tmp / "ledger.db"
        self.ledger: Path | str = ledger or self.ledger_path
        self.common = ("--broker", broker, "--ledger", ledger or f"sqlite:///{self.ledger_path}",
                       "--system", f"portal={portal.url}")
        self.env = {**os.environ, **FAST, "AUTOCLERK_ARTIFACTS_DIR": str(tmp / "artifacts")}
        self.workers: list[subprocess.Popen[bytes]] = []
        self.marker = tmp / "fault-marker"
        self.started = time.monotonic()

    # -- workers ---------------------------------------------------------------------------------------
    def start_worker(self, *extra: str, fault: str | None = None, concurrency: int = 2,
                     env: dict[str, str] | None = None, marker: Path | None = None) -> subprocess.Popen[bytes]:
        """A worker in a session of its own (a kill of the group takes its Chromium, as a dead host would);
        ``env`` adds to the rig's environment for this worker only; ``marker`` replaces the rig's one-shot
        fault marker (a run that arms several fault points gives each its own)."""
        env = {**self.env, **(env or {})}
        if fault:
            env.update(AUTOCLERK_FAULT_POINT=fault, AUTOCLERK_FAULT_MARKER=str(marker or self.marker))
        log = open(self.tmp / f"worker-{len(self.workers)}.log", "wb")  # noqa: SIM115 - owned by the process
        proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "worker", "--concurrency", str(concurrency),
                                 *self.common, *extra], cwd=self.tmp, env=env, stdout=subprocess.DEVNULL, stderr=log,
                                start_new_session=True)
        log.close()
        self.workers.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL, "the worker really was killed"

    def worker_logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.tmp.glob("worker-*.log")))

    def close(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGCONT)
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for proc in self.workers:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    # -- the hand-off ----------------------------------------------------------------------------------
    @contextmanager
    def run_in_background(self, cases: Path, timeout_s: int = 600,
                          workflow: Path = EXAMPLE) -> Iterator[subprocess.Popen[str]]:
        proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "run", str(workflow), "--cases", str(cases),
                                 *self.common, "--json", "--timeout", str(timeout_s)], cwd=self.tmp, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=60)

    def finish(self, run: subprocess.Popen[str], timeout_s: float = 600) -> dict:
        out, err = run.communicate(timeout=timeout_s)
        assert run.returncode in (0, EXIT_FAILED), \
            f"autoclerk run failed ({run.returncode}): {err[-2000:]}\n{self.worker_logs()[-3000:]}"
        summary = last_json(out)
        assert (run.returncode == EXIT_FAILED) == (summary["failed"] > 0), "exit 5 exactly when a case failed"
        return summary

    def example(self, max_attempts: int) -> Path:
        """The example workflow with its own ``max_attempts``, written beside the part it calls."""
        path = self.tmp / EXAMPLE.name
        text = EXAMPLE.read_text()
        assert "\nmax_attempts: 3\n" in text
        path.write_text(text.replace("\nmax_attempts: 3\n", f"\nmax_attempts: {max_attempts}\n"))
        shutil.copy(EXAMPLE.parent / "sign_in.yaml", self.tmp)
        return path

    def cases(self, count: int = BROWSER_CASES, *, start: int = 1, seed: int = 1) -> Path:
        from demo_portal import generate_cases

        path = self.tmp / "cases.csv"
        generate_cases(path, count, invalid_rate=0.0, seed=seed, start=start)
        return path

    # -- watching the ledger ---------------------------------------------------------------------------
    def rows(self) -> list[tuple[str, str, str | None, int]]:
        """``(case_ref, state, lease_owner, attempts)`` of every transaction (empty before the ledger exists)."""
        if isinstance(self.ledger, Path) and not self.ledger.exists():
            return []
        try:
            return query(self.ledger, "select case_ref, state, lease_owner, attempts from transactions")
        except Exception:  # noqa: BLE001 - not created yet, locked, or the database is restarting
            return []

    def count(self, state: str) -> int:
        return sum(1 for row in self.rows() if row[1] == state)

    def wait(self, condition: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert time.monotonic() < deadline, f"{what} did not happen within {timeout_s:g} s\n{self.worker_logs()[-3000:]}"
            time.sleep(0.2)

    def wait_for_consumers(self, count: int) -> None:
        wait_for_consumers(self.broker, count)

    # -- the verdict -----------------------------------------------------------------------------------
    def verdict(self, cases: Path) -> Verdict:
        return check(accepted_refs(cases), self.ledger, self.portal.url,
                     dead_letters=drain_dead_letters(self.broker))


def record(fault: str, verdict: Verdict, *, confirmed: bool, recover_s: float | None, **extra: object) -> None:
    """Add the fault's row to the report (``AUTOCLERK_FAULTS_OUT``), then hold the test to the oracle."""
    row = {"fault": fault, **verdict.as_dict(), "fault_confirmed": confirmed,
           "time_to_recover_s": None if recover_s is None else round(recover_s, 1), **extra}
    out = os.environ.get("AUTOCLERK_FAULTS_OUT")
    if out:
        with open(out, "a") as fh:
            fh.write(json.dumps(row) + "\n")
    assert confirmed, f"{fault}: the fault did not happen, so the run proves nothing"
    assert verdict.ok, f"{fault}: {verdict}"
