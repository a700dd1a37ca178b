"""Chromium's processes: the owner marker, ending orphans whose worker is gone, and their memory.

Every browser a bot launches carries ``AUTOCLERK_BOT_OWNER=<pid>:<start time>`` of its worker in its
environment (inherited by all of Chromium's helper processes). A process whose marker names a worker
that no longer runs (or a PID since reused by another process, told apart by its start time) is an
orphan: a worker killed with ``kill -9`` leaves its browser behind, and the next worker on the host ends it.

Process trees, environments and memory are read through psutil, so none of it assumes Linux's ``/proc``
(psutil is imported when first needed: importing this module touches nothing of the platform).
"""

from __future__ import annotations

import os
from typing import Any

import structlog

from .chromium import OWNER_ENV

log = structlog.get_logger(__name__)


def _psutil() -> Any:
    import psutil

    return psutil


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
    """One pass over the processes: the browser processes (as :func:`browser_processes`) and every process's parent."""
    psutil = _psutil()
    marked: dict[int, str] = {}
    parents: dict[int, int] = {}
    for process in psutil.process_iter(["ppid", "environ"], ad_value=None):
        info = process.info
        if info["ppid"] is None:
            continue  # gone meanwhile
        parents[process.pid] = info["ppid"]
        marker = (info["environ"] or {}).get(OWNER_ENV)  # None: not ours to read, or no marker
        if marker is not None and (owner is None or marker == owner):
            marked[process.pid] = marker
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
    except (OSError, _psutil().Error):
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
    psutil = _psutil()
    killed = []
    for pid in pids:
        try:
            psutil.Process(pid).kill()  # SIGKILL, or TerminateProcess on Windows
            killed.append(pid)
        except psutil.NoSuchProcess:
            pass
    if killed:
        log.warning(event, count=len(killed), **fields)
    return killed


def _start_time(pid: int) -> str:
    """The process's start time in hundredths of a second since the epoch, as digits (a marker's second part)."""
    psutil = _psutil()
    try:
        return str(round(psutil.Process(pid).create_time() * 100))
    except psutil.NoSuchProcess:
        raise ProcessLookupError(pid) from None


def descendants(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    psutil = _psutil()
    try:
        return [pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))]
    except psutil.NoSuchProcess:
        return [pid]


def children(pid: int) -> list[int]:
    """The children of ``pid``, whichever of its threads started them (Playwright starts its driver, and so
    Chromium, from the engine's thread, not the main one)."""
    psutil = _psutil()
    try:
        return [child.pid for child in psutil.Process(pid).children()]
    except psutil.NoSuchProcess:
        return []


def memory_mb(pids: list[int]) -> float:
    """Memory of processes in MB: proportional set size (shared pages split between sharers) where the platform
    reports it, else the resident set."""
    psutil = _psutil()
    total = 0
    for pid in pids:
        try:
            process = psutil.Process(pid)
            try:
                total += getattr(process.memory_full_info(), "pss", None) or process.memory_info().rss
            except psutil.AccessDenied:
                total += process.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total / 2**20


def rss_mb(pid: int) -> float:
    """A process's resident set size in MB (0 once it is gone)."""
    psutil = _psutil()
    try:
        return float(psutil.Process(pid).memory_info().rss) / 2**20
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0.0
