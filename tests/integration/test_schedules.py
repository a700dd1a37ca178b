"""Recurring work with real parts: ``autoclerk beat`` as a process (Celery beat over the ledger) fires the
schedules ``autoclerk schedule`` adds while it runs, and real workers run the dropped files' batches to the
end with real Chromium bots against the demo portal: on the embedded broker (``beat --embedded``, one
process) and on RabbitMQ (``beat`` beside an ``autoclerk worker``)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from demo_portal import PortalProcess, generate_cases
from orchestrator import Ledger
from tests.conftest import EXAMPLE, autoclerk, wait_for_consumers
from tests.faults.rig import FAST


class Beat:
    """One test's world: a ledger, a watched folder, and the processes started (stopped at the end)."""

    def __init__(self, tmp: Path, portal: PortalProcess, broker: str | None) -> None:
        self.tmp, self.portal = tmp, portal
        self.ledger = f"sqlite:///{tmp / 'ledger.db'}"
        self.env = {**os.environ, **FAST, "AUTOCLERK_LEDGER_URL": self.ledger,
                    "AUTOCLERK_ARTIFACTS_DIR": str(tmp / "artifacts"),
                    "AUTOCLERK_SYSTEMS": json.dumps({"portal": portal.url})}
        if broker is not None:
            self.env["AUTOCLERK_BROKER_URL"] = broker
        self.folder = tmp / "watched"
        self.folder.mkdir()
        self.processes: list[subprocess.Popen[str]] = []

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return autoclerk(*args, cwd=self.tmp, env=self.env)

    def start(self, *args: str) -> subprocess.Popen[str]:
        log = open(self.tmp / f"process-{len(self.processes)}.log", "w")  # noqa: SIM115 - owned by the process
        proc = subprocess.Popen([sys.executable, "-m", "orchestrator", *args], cwd=self.tmp, env=self.env,
                                stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True)
        log.close()
        self.processes.append(proc)
        return proc

    def start_beat(self, *args: str) -> subprocess.Popen[str]:
        proc = self.start("beat", "--concurrency", "2", *args)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("beat started"), f"beat did not start: {line!r}\n{self.logs()}"
        return proc

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.tmp.glob("process-*.log")))

    def wait(self, condition: Callable[[], bool], what: str, timeout_s: float = 180) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert time.monotonic() < deadline, f"{what} did not happen within {timeout_s:g} s\n{self.logs()}"
            time.sleep(0.2)

    def drop(self, source: Path, name: str) -> Path:
        """Drop a file as a careful sender does: written as NAME.part, then renamed."""
        part = self.folder / "inbox" / f"{name}.part"
        part.write_bytes(source.read_bytes())
        part.rename(self.folder / "inbox" / name)
        return self.folder / "inbox" / name

    def schedules(self) -> dict[str, dict]:
        listed = self.cli("schedule", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        return {row["name"]: row for row in map(json.loads, listed.stdout.splitlines())}

    def close(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
            if proc.stdout is not None:
                proc.stdout.close()


@pytest.fixture
def world(tmp_path: Path, portal: PortalProcess, chromium: str, request: pytest.FixtureRequest) -> Iterator[Beat]:
    broker = request.getfixturevalue("rabbitmq") if request.param == "rabbitmq" else None
    made = Beat(tmp_path, portal, broker)
    published = made.cli("workflows", "publish", str(EXAMPLE))
    assert published.returncode == 0, published.stderr
    yield made
    made.close()


def results_of(path: Path) -> dict[str, str]:
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["case_ref"]: row["state"] for row in csv.DictReader(handle)}


@pytest.mark.parametrize("world", ["embedded", "rabbitmq"], indirect=True)
def test_beat_fires_a_schedule_added_while_it_runs_and_a_dropped_file_runs_to_the_end(world: Beat) -> None:
    if "AUTOCLERK_BROKER_URL" in world.env:
        world.start("worker", "--concurrency", "2")
        wait_for_consumers(world.env["AUTOCLERK_BROKER_URL"], 1)
        beat = world.start_beat()
    else:
        beat = world.start_beat("--embedded")
    second = world.cli("beat", *(() if "AUTOCLERK_BROKER_URL" in world.env else ("--embedded",)))
    assert second.returncode == 2, second.stderr
    assert second.stderr.splitlines()[-1].startswith("autoclerk: error: another beat (beat:"), second.stderr

    added = world.cli("schedule", "add", "inbox", "--workflow", "change-of-address", "--folder", str(world.folder),
                      "--every", "1s")
    assert added.returncode == 0, added.stderr
    cases = world.tmp / "cases.csv"
    generate_cases(cases, 3, invalid_rate=0.0, seed=5, start=901)
    world.drop(cases, "monday.csv")
    results = world.folder / "processed" / "monday.results.csv"
    world.wait(results.exists, "the batch's results beside the processed file")
    assert results_of(results) == {"CASE-000901": "done", "CASE-000902": "done", "CASE-000903": "done"}
    assert not (world.folder / "inbox" / "monday.csv").exists() and (world.folder / "processed" / "monday.csv").exists()
    submitted = sorted(e["case_ref"] for e in httpx.get(f"{world.portal.url}/api/export").json())
    assert submitted == ["CASE-000901", "CASE-000902", "CASE-000903"]
    outcome = world.schedules()["inbox"]["last_outcome"]
    assert outcome.startswith("monday.csv → batch ") and "(3 queued, 0 refused)" in outcome

    world.drop(cases, "monday-again.csv")
    reason = world.folder / "rejected" / "monday-again.csv.reason.txt"
    world.wait(reason.exists, "the second copy rejected")
    assert "It was not handed off again" in reason.read_text()

    # a file schedule that would fire next new year, fired now on request
    later = world.tmp / "later.csv"
    generate_cases(later, 2, invalid_rate=0.0, seed=6, start=911)
    assert world.cli("schedule", "add", "yearly", "--workflow", "change-of-address", "--file", str(later),
                     "--cron", "0 0 1 1 *").returncode == 0
    asked = world.cli("schedule", "run-now", "yearly")
    assert asked.returncode == 0 and "warning" not in asked.stderr, asked.stderr
    world.wait(lambda: (world.schedules()["yearly"]["last_outcome"] or "").startswith("batch "), "run-now fired")
    world.wait(lambda: len(httpx.get(f"{world.portal.url}/api/export").json()) == 5, "the file schedule's cases submitted")
    assert world.cli("schedule", "remove", "inbox").returncode == 0
    assert "inbox" not in world.schedules()
    assert beat.poll() is None, world.logs()
    os.killpg(beat.pid, signal.SIGTERM)
    assert beat.wait(timeout=60) == 0, world.logs()
    ledger = Ledger(world.ledger)
    try:
        assert ledger.schedules.lease_holder("beat") is None  # given up: a new beat may start at once
    finally:
        ledger.close()


@pytest.mark.parametrize("world", ["embedded"], indirect=True)
def test_bad_schedules_are_one_line_and_beat_needs_embedded_on_the_embedded_broker(world: Beat) -> None:
    for args, message in [
        (("--folder", "nowhere", "--every", "30s"), "--folder nowhere: no such folder"),
        (("--folder", str(world.folder), "--every", "30"), "--every: expected a number and a unit"),
        (("--folder", str(world.folder), "--cron", "0 7 * * FUNDAY"), "--cron: '0 7 * * FUNDAY' is not a cron expression"),
    ]:
        refused = world.cli("schedule", "add", "nightly", "--workflow", "change-of-address", *args)
        errors = [line for line in refused.stderr.splitlines() if line.startswith("autoclerk:")]
        assert refused.returncode == 2 and errors == [refused.stderr.splitlines()[-1]], refused.stderr
        assert errors[0].startswith(f"autoclerk: error: {message}"), refused.stderr
    refused = world.cli("schedule", "add", "nightly", "--workflow", "nope", "--folder", str(world.folder), "--every", "1m")
    assert refused.returncode == 2 and "there is no published workflow 'nope'" in refused.stderr
    assert world.schedules() == {}
    alone = world.cli("beat")
    assert alone.returncode == 2 and "run 'autoclerk beat --embedded'" in alone.stderr
