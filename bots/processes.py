"""Chromium's processes: the owner marker, ending orphans whose worker is gone, and their memory.

Every browser a bot launches carries ``AUTOCLERK_BOT_OWNER=<pid>:<start time>`` of its worker in its
environment (inherited by all of Chromium's helper processes). A process whose marker names a worker
that no longer runs (or a PID since reused by another process, told apart by its start time) is an
orphan: a worker killed with ``kill -9`` leaves its browser behind, and the next worker on the host ends it.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import structlog

from .chromium import OWNER_ENV

log = structlog.get_logger(__name__)

PROC = Path("/proc")


def owner_marker(pid: int | None = None) -> str:
    """The marker of a worker process: its PID and start time (so a reused PID is not mistaken for it)."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{_start_time(pid)}"


def browser_processes(owner: str | None = None) -> dict[int, str]:
    """The browser processes of workers (``{pid: marker}``), or only ``owner``'s.

    A process carries the marker in its environment, or descends from one that does (Chromium's zygotes
    start renderers with a cleaned environment).
    """
    return _scan(owner)[0]


def _scan(owner: str | None) -> tuple[dict[int, str], dict[int, int]]:
    """One pass over /proc: the browser processes (as :func:`browser_processes`) and every process's parent."""
    marked: dict[int, str] = {}
    parents: dict[int, int] = {}
    prefix = f"{OWNER_ENV}=".encode()
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            parents[pid] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            environ = (entry / "environ").read_bytes()
        except (OSError, IndexError, ValueError):  # gone meanwhile, or not ours to read
            continue
        for item in environ.split(b"\0"):
            if item.startswith(prefix):
                marker = item[len(prefix):].decode(errors="replace")
                if owner is None or marker == owner:
                    marked[pid] = marker
                break
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    found = dict(marked)
    todo = list(marked)
    while todo:
        parent = todo.pop()
        for child in children.get(parent, []):
            if child not in found:
                found[child] = found[parent]
                todo.append(child)
    return found, parents


def is_ours(marker: str) -> bool:
    """Whether a marker has the form a worker writes (``pid:starttime``); any other value is somebody
    else's use of the variable, and the reaper leaves those processes alone."""
    pid, sep, started = marker.partition(":")
    return bool(sep) and pid.isdigit() and started.isdigit()


def is_alive(marker: str) -> bool:
    """Whether the worker a marker names still runs."""
    pid, _, started = marker.partition(":")
    try:
        return pid.isdigit() and _start_time(int(pid)) == started
    except OSError:
        return False


def reap(owner: str | None = None) -> list[int]:
    """End orphaned browser processes (or, with ``owner``, that worker's own); returns the PIDs signalled."""
    doomed = [pid for pid, marker in browser_processes(owner).items()
              if pid != os.getpid() and not (owner is None and (not is_ours(marker) or is_alive(marker)))]
    return _kill(doomed, "browser processes ended", orphans=owner is None)


def reap_detached(owner: str) -> list[int]:
    """End ``owner``'s browser processes that no longer descend from this process: what is left of a browser
    that died (killed or crashed), whose helpers (zygotes, utility processes) were re-parented to init and
    may live on. The processes of live browsers, a retiring one's included, are left alone."""
    found, parents = _scan(owner)
    me, detached = os.getpid(), []
    for pid in found:
        current, seen = pid, set()
        while current not in (me, 0, 1) and current not in seen:
            seen.add(current)
            current = parents.get(current, 0)
        if current != me:
            detached.append(pid)
    return _kill(detached, "processes of a dead browser ended")


def _kill(pids: list[int], event: str, **fields: object) -> list[int]:
    killed = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except ProcessLookupError:
            pass
    if killed:
        log.warning(event, count=len(killed), **fields)
    return killed


def _start_time(pid: int) -> str:
    stat = (PROC / str(pid) / "stat").read_text()
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, counted after the command name


def descendants(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    out, todo, seen = [], [pid], set()
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            out.append(current)
            todo += children(current)
    return out


def children(pid: int) -> list[int]:
    """The children of every thread of ``pid``: Playwright starts its driver, and so Chromium, from the
    engine's thread, not the main one."""
    found = []
    for listing in (PROC / str(pid) / "task").glob("*/children"):
        try:
            found += [int(child) for child in listing.read_text().split()]
        except OSError:  # the thread or the process ended meanwhile
            continue
    return found


def memory_mb(pids: list[int]) -> float:
    """Memory of processes in MB: proportional set size (shared pages split between sharers), else RSS."""
    return sum(_kb(pid, "smaps_rollup", "Pss:") or _kb(pid, "status", "VmRSS:") for pid in pids) / 1024


def rss_mb(pid: int) -> float:
    """A process's resident set size in MB (0 once it is gone)."""
    return _kb(pid, "status", "VmRSS:") / 1024


def _kb(pid: int, name: str, key: str) -> int:
    try:
        for line in (PROC / str(pid) / name).read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
