"""What the tests read about other processes (their state, parent and command line), through psutil rather than
by parsing ``/proc`` by hand. Each answers for a process that has ended without raising. The command line of a
process that may not be read is ""; its state and parent raise :class:`psutil.AccessDenied`."""

from __future__ import annotations

import psutil


def status(pid: int) -> str | None:
    """The process's state, one of psutil's ``STATUS_`` values, or ``None`` once it has ended (a process that may
    not be read raises :class:`psutil.AccessDenied`)."""
    try:
        return str(psutil.Process(pid).status())
    except psutil.NoSuchProcess:
        return None


def stopped(pid: int) -> bool:
    """The process is stopped (by SIGSTOP)."""
    return status(pid) == psutil.STATUS_STOPPED


def ended(pid: int) -> bool:
    """The process has ended: gone, or defunct until its parent reaps it."""
    return status(pid) in (None, psutil.STATUS_ZOMBIE)


def parent(pid: int) -> int | None:
    """The pid of the process's parent (1 once init has adopted it), or ``None`` once it has ended."""
    try:
        return psutil.Process(pid).ppid()
    except psutil.NoSuchProcess:
        return None


def command_line(pid: int) -> str:
    """The process's command line as one string ("" once it has ended). Chromium rewrites its own as one string
    joined by spaces; psutil splits that too."""
    try:
        return " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return ""


def zombies(parent_pid: int | None = None) -> list[int]:
    """The pids of defunct processes: all of them, or only the children of ``parent_pid``."""
    return [process.pid for process in psutil.process_iter(["status", "ppid"], ad_value=None)
            if process.info["status"] == psutil.STATUS_ZOMBIE
            and (parent_pid is None or process.info["ppid"] == parent_pid)]
