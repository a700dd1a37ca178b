"""The orphan reaper: it ends processes whose worker marker names a dead worker, and nothing else; and what a
live worker's dead browser left re-parented to init, sparing what still descends from the worker."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

from bots.chromium import OWNER_ENV
from bots.processes import children, descendants, is_ours, memory_mb, owner_marker, reap, reap_detached, rss_mb
from tests.processes import ended, parent


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


def test_what_a_dead_browser_left_re_parented_to_init_is_ended_and_what_descends_from_the_worker_is_not() -> None:
    marker = owner_marker()
    attached = _marked(marker)
    # A helper whose parent exits (as Chromium's helpers when their browser is killed): init adopts it.
    started = subprocess.run(["sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!"], env={**os.environ, OWNER_ENV: marker},
                             capture_output=True, text=True, check=True)
    detached = int(started.stdout)
    try:
        assert parent(detached) not in (None, os.getpid()), "its parent, the shell, has exited: init adopted it"
        killed = reap_detached(marker)
        assert detached in killed and attached.pid not in killed
        assert attached.poll() is None
        deadline = time.monotonic() + 10
        while not ended(detached):
            assert time.monotonic() < deadline, "the detached helper ended"
            time.sleep(0.05)
    finally:
        attached.kill()
        attached.wait()
        try:
            os.kill(detached, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_descendants_include_the_children_of_every_thread_and_their_memory_is_read() -> None:
    """Playwright starts its driver from the engine's thread: a walk of the main thread's children misses it."""
    started: list[subprocess.Popen[bytes]] = []
    thread = threading.Thread(target=lambda: started.append(subprocess.Popen(["sh", "-c", "sleep 60 & wait"],
                                                                               start_new_session=True)))
    thread.start()
    thread.join()
    shell = started[0]
    try:
        deadline = time.monotonic() + 10
        while not children(shell.pid):  # the shell has started its sleep
            assert time.monotonic() < deadline, "the shell started its child"
            time.sleep(0.05)
        (grandchild,) = children(shell.pid)
        assert shell.pid in children(os.getpid())
        tree = descendants(os.getpid())
        assert tree[0] == os.getpid() and {shell.pid, grandchild} <= set(tree)
        assert rss_mb(shell.pid) > 0 and memory_mb([shell.pid, grandchild]) > 0
    finally:
        os.killpg(shell.pid, signal.SIGKILL)  # the shell and its sleep
        shell.wait()
    assert rss_mb(shell.pid) == 0 and memory_mb([shell.pid]) == 0, "a process that is gone has no memory"
