"""A soak through one worker: memory sampled over the run (its slope must be flat once warm), browsers
recycled, then a graceful SIGTERM while transactions are in flight: nothing lost, no orphan or defunct
process afterwards. ``quick`` runs 60 transactions; ``full`` (``autoclerk faults report``) runs 2,000."""

from __future__ import annotations

import os
import signal
import statistics
import threading
import time

import pytest

from bots.processes import browser_processes, children, descendants, rss_mb
from tests.processes import command_line, zombies

from .rig import SIZE, FaultRig, record

SOAK = 2000 if SIZE == "full" else 120
"""At 60 the quick soak was mostly warm-up (the first transactions load code paths for the first time): the
worker grew 119 KB per transaction over it, and 5 KB over 240; 120 with the first third left out measures the
steady state."""


def slope_kb(samples: list[tuple[int, float]]) -> float:
    """Least-squares growth in KB per transaction done, over the samples after the first third (warm-up)."""
    warm = samples[len(samples) // 3:]
    if len(warm) < 3 or warm[-1][0] <= warm[0][0]:
        return 0.0
    xs, ys = [x for x, _ in warm], [y for _, y in warm]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    denominator = sum((x - mean_x) ** 2 for x in xs) or 1.0
    return 1024 * sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / denominator


def browsers(pids: list[int]) -> int:
    """How many of ``pids`` are Chromium browsers, not their helpers (Chromium writes its command line as one
    string; only the browser has the pipe Playwright drives it through)."""
    return sum("--remote-debugging-pipe" in args and "--type=" not in args for args in map(command_line, pids))


@pytest.mark.timeout(7200 if SIZE == "full" else 600)  # the full soak runs about 20 minutes
def test_a_soak_through_one_worker_keeps_memory_flat_and_a_sigterm_mid_run_loses_nothing(rig: FaultRig) -> None:
    cases = rig.cases(SOAK, seed=81, start=20_000)
    rig.env["AUTOCLERK_RECYCLE_AFTER"] = str(max(20, SOAK // 10))
    worker = rig.start_worker(concurrency=2)
    rig.wait_for_consumers(1)
    own: list[tuple[int, float]] = []  # the worker process
    driver: list[tuple[int, float]] = []  # Playwright's driver (node), the worker's child
    whole: list[tuple[int, float]] = []  # the worker with its Playwright driver and Chromium processes
    alive: list[int] = []  # browsers at once: one, and two while a recycled one finishes its transactions
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(1.0):
            done = rig.count("done")
            own.append((done, rss_mb(worker.pid)))
            driver.append((done, sum(rss_mb(child) for child in children(worker.pid))))
            tree = descendants(worker.pid)
            whole.append((done, sum(rss_mb(pid) for pid in tree)))
            alive.append(browsers(tree))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with rig.run_in_background(cases, timeout_s=7200) as run:
        rig.wait(lambda: rig.count("done") >= SOAK * 0.9, 7200, "nine tenths of the soak done")
        rig.wait(lambda: rig.count("in_progress") >= 1, 120, "a transaction in flight")
        stop.set()
        os.kill(worker.pid, signal.SIGTERM)  # graceful: in-flight work finishes or is released
        terminated = time.monotonic()
        worker.wait(timeout=180)

        def left() -> list[int]:
            return [pid for pid, marker in browser_processes().items() if marker.startswith(f"{worker.pid}:")]

        deadline = time.monotonic() + 15
        while left() and time.monotonic() < deadline:  # the browser exits once the worker closed it
            time.sleep(0.2)
        orphans = left()
        rig.start_worker(concurrency=2)  # takes over whatever the stopped worker released
        summary = rig.finish(run, timeout_s=7200)
        recover_s = time.monotonic() - terminated
    sampler.join()
    own_slope, whole_slope = slope_kb(own), slope_kb(whole)
    warm = whole[len(whole) // 3:]
    verdict = rig.verdict(cases)
    record(f"soak: {SOAK} browser transactions through one worker, SIGTERM mid-run", verdict,
           confirmed=worker.returncode is not None and len(own) >= 3, recover_s=recover_s,
           worker_slope_kb_per_transaction=round(own_slope, 1),
           driver_slope_kb_per_transaction=round(slope_kb(driver), 1),
           with_browsers_slope_kb_per_transaction=round(whole_slope, 1),
           with_browsers_first_mb=round(warm[0][1], 1) if warm else None,
           with_browsers_last_mb=round(warm[-1][1], 1) if warm else None,
           with_browsers_peak_mb=round(max(y for _, y in whole), 1) if whole else None,
           most_browsers_at_once=max(alive, default=0),
           sigterm_exit=worker.returncode, orphans=len(orphans), defunct=len(zombies(os.getpid())))
    assert summary["unfinished"] == 0
    assert worker.returncode == 0, "SIGTERM stops the worker gracefully"
    assert orphans == [] and zombies(os.getpid()) == []
    assert 1 <= max(alive, default=0) <= 2, f"at most two browsers at once, not {max(alive, default=0)}: a retired one was left open"
    assert own_slope < 100, f"the worker's memory grows {own_slope:.0f} KB per transaction"
    if SIZE == "full":  # over 2,000 transactions the browsers' recycling sawtooth averages out
        assert whole_slope < 100, f"the worker's and its browsers' memory grows {whole_slope:.0f} KB per transaction"
