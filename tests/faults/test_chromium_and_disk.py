"""Chromium under faults mid-run (a renderer killed, then the whole browser killed), and the artifacts disk
full while failed attempts write their evidence: outcomes unchanged, no orphan or defunct process."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from bots.processes import browser_processes
from demo_portal import generate_cases
from tests.processes import command_line, ended, parent, zombies

from .rig import FaultRig, record


def _ours(worker_pid: int) -> dict[int, str]:
    return {pid: command_line(pid) for pid, marker in browser_processes().items() if marker.startswith(f"{worker_pid}:")}


def test_a_killed_renderer_and_a_killed_browser_mid_run_lose_nothing_and_leave_no_orphans(rig: FaultRig) -> None:
    cases = rig.cases(seed=91, start=30_000)
    worker = rig.start_worker()
    rig.wait_for_consumers(1)
    zombies_before = set(zombies())
    kills = []
    with rig.run_in_background(cases) as run:
        rig.wait(lambda: rig.count("done") >= 2, 300, "two cases done")
        rig.wait(lambda: any("--type=renderer" in c for c in _ours(worker.pid).values()), 60, "a renderer running")
        renderer = next(pid for pid, c in _ours(worker.pid).items() if "--type=renderer" in c)
        os.kill(renderer, signal.SIGKILL)
        rig.wait(lambda: ended(renderer), 10, "the renderer ending")
        kills.append("renderer")
        struck = time.monotonic()
        rig.wait(lambda: rig.count("done") >= 5, 300, "five cases done")
        rig.wait(lambda: any("--type=" not in c and c for c in _ours(worker.pid).values()), 60, "the browser running")
        browser = next(pid for pid, c in _ours(worker.pid).items() if "--type=" not in c and c)
        os.kill(browser, signal.SIGKILL)
        rig.wait(lambda: ended(browser), 10, "the browser ending")
        kills.append("browser")
        summary = rig.finish(run)
    verdict = rig.verdict(cases)
    left = [pid for pid in _ours(worker.pid) if parent(pid) == 1]
    # A process that just ended is defunct until its parent reaps it: only one still defunct after a few
    # seconds was left behind (a fresh-clone CI run once caught one in that instant).
    deadline = time.monotonic() + 10
    while (new_zombies := [pid for pid in zombies() if pid not in zombies_before]) and time.monotonic() < deadline:
        time.sleep(0.2)
    logs = rig.worker_logs()
    record("Chromium renderer kill -9, then browser kill -9, mid-run", verdict,  # kills: each one seen to end
           confirmed=kills == ["renderer", "browser"] and worker.poll() is None, recover_s=time.monotonic() - struck,
           orphans=len(left), defunct=len(new_zombies), crashes_logged="crash" in logs.lower() or "Target" in logs)
    assert summary["unfinished"] == 0 and left == [] and new_zombies == [], \
        f"left behind: {[(pid, command_line(pid)[:160]) for pid in left]}, defunct: {new_zombies}"


def test_a_full_artifacts_disk_changes_no_outcome_and_leaves_no_partial_evidence(rig: FaultRig) -> None:
    artifacts = rig.tmp / "artifacts"
    artifacts.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(artifacts)],
                             capture_output=True, text=True)
    assert mounted.returncode == 0, f"the test mounts a small tmpfs as root: {mounted.stderr}"
    try:
        cases = rig.tmp / "cases.csv"
        refused = generate_cases(cases, 12, invalid_rate=0.8, seed=92, start=31_000)  # each refusal keeps evidence
        rig.start_worker()
        rig.wait_for_consumers(1)
        with rig.run_in_background(cases) as run:
            summary = rig.finish(run)
        statvfs = os.statvfs(artifacts)
        full = statvfs.f_bavail * statvfs.f_frsize < 32 * 1024
        partial = [p for p in artifacts.rglob("*") if p.is_file() and p.stat().st_size == 0]
        verdict = rig.verdict(cases)
        not_kept = rig.worker_logs().count("evidence not kept")
    finally:
        subprocess.run(["umount", "-l", str(artifacts)], check=False)
    record("artifacts disk full while evidence is written", verdict, confirmed=full and not_kept >= 1, recover_s=None,
           evidence_not_kept=not_kept, partial_files=len(partial))
    assert summary["business_exception"] == refused and summary["done"] == 12 - refused, "outcomes unchanged"
    assert partial == []
