"""The orphan reaper: it ends processes whose worker marker names a dead worker, and nothing else."""

from __future__ import annotations

import os
import subprocess

from bots.chromium import OWNER_ENV
from bots.processes import is_ours, owner_marker, reap


def _marked(marker: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "60"], env={**os.environ, OWNER_ENV: marker})


def test_the_reaper_ends_a_dead_workers_processes_but_not_a_live_workers_or_a_foreign_marker() -> None:
    dead, live, foreign = _marked("4194303:12345"), _marked(owner_marker()), _marked("baseline-42")
    try:
        killed = reap()
        assert dead.pid in killed and dead.wait(timeout=10) == -9
        assert live.pid not in killed and foreign.pid not in killed
        assert live.poll() is None and foreign.poll() is None
    finally:
        for process in (dead, live, foreign):
            process.kill()
            process.wait()


def test_only_the_workers_own_form_of_marker_counts_as_ours() -> None:
    assert is_ours(owner_marker()) and is_ours("12:345")
    assert not is_ours("baseline-42") and not is_ours("12:") and not is_ours(":1") and not is_ours("")
