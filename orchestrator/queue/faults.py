"""Fault points: named moments in a transaction's life where the fault-injection suite kills a worker.

Inert unless both ``AUTOCLERK_FAULT_POINT`` (a name of :data:`POINTS`) and ``AUTOCLERK_FAULT_MARKER`` (a
file path) are set, which only the tests in ``tests/faults`` do. Then the first worker process to reach
that point creates the marker file and kills itself with SIGKILL on the spot: exactly what a kill -9
from outside at that instant would do, without a race to hit the instant.

Points:
- ``stall_before_submit``: the process stops itself (SIGSTOP) just before the lease is checked for the
  submit; the test resumes it (SIGCONT) after another worker has taken the case over;
- ``before_submit``: the ledger has recorded that this attempt may submit, the submit has not happened;
- ``after_submit``: the target system has accepted the submit, the ledger has not recorded the outcome;
- ``after_commit``: the ledger has recorded the outcome, the broker has not had the acknowledgement;
- ``stall_before_verify``: the process stops itself (SIGSTOP) after a successful submit, just before the
  verification reads the record back; the test takes the target system down, then resumes it (SIGCONT).
"""

from __future__ import annotations

import os
import signal

POINTS = ("stall_before_submit", "before_submit", "after_submit", "after_commit", "stall_before_verify")
_armed: tuple[str, str] | None | bool = False  # False: not read yet; None: no fault asked for


def fault_point(name: str) -> None:
    """Kill (or stop) this process here, once, when the fault suite asked for ``name`` (otherwise nothing)."""
    global _armed
    if _armed is False:
        point, marker = os.environ.get("AUTOCLERK_FAULT_POINT"), os.environ.get("AUTOCLERK_FAULT_MARKER")
        _armed = (point, marker) if point in POINTS and marker else None
    if _armed is None or _armed[0] != name:  # type: ignore[index]
        return
    try:
        fd = os.open(_armed[1], os.O_CREAT | os.O_EXCL | os.O_WRONLY)  # type: ignore[index]
    except FileExistsError:
        return  # another process (or an earlier attempt) took the fault already
    os.write(fd, f"{name} {os.getpid()}\n".encode())
    os.close(fd)
    os.kill(os.getpid(), signal.SIGSTOP if name.startswith("stall_") else signal.SIGKILL)
