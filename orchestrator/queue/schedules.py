"""Schedules as people change them: add, remove and run now (each a person's action, kept in one function
so the audit trail records it in one line), and what a schedule's timing means to Celery beat.

A schedule hands off one file (``--file``) or every file dropped into a watched folder's ``inbox/``
(``--folder``) to a published workflow, on a cron expression or every so many seconds. Everything is
checked before anything is saved: a bad cron expression, interval, workflow or folder is one sentence.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from celery.schedules import BaseSchedule, crontab, schedule

from ..errors import UsageError
from ..ledger import Ledger

FOLDERS = ("inbox", "processed", "rejected")
"""The sub-folders of a watched folder: files are dropped into the first and moved to one of the others."""
CASE_FILE_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".xlsx")
"""The files a schedule hands off (CSV, JSON lines, spreadsheets)."""
BEAT_LEASE = "beat"
"""The lease the one running beat holds (see :meth:`orchestrator.ledger.Schedules.hold_lease`)."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_EVERY = re.compile(r"(\d+(?:\.\d+)?)(s|m|h|d)")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_every(text: str) -> float:
    """Seconds from ``30s``, ``5m``, ``2h`` or ``1d``.

    Raises:
        UsageError: anything else, or zero.
    """
    found = _EVERY.fullmatch(text.strip())
    seconds = timedelta(**{_UNITS[found.group(2)]: float(found.group(1))}).total_seconds() if found else 0
    if not seconds:
        raise UsageError(f"--every: expected a number and a unit, s, m, h or d (e.g. 30s, 5m, 1d), not '{text}'")
    return seconds


def parse_cron(text: str) -> crontab:
    """Celery's :class:`crontab` from the five fields of a cron expression (minute, hour, day of the month,
    month, day of the week), e.g. ``0 7 * * MON-FRI``.

    Raises:
        UsageError: not five fields, or a field Celery's cron parser refuses (its reason is given).
    """
    fields = text.split()
    if len(fields) != 5:
        raise UsageError(f"--cron: expected five fields (minute hour day-of-month month day-of-week, e.g. "
                         f"'0 7 * * MON-FRI'), not '{text}'")
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    try:
        return crontab(minute=minute, hour=hour, day_of_week=day_of_week, day_of_month=day_of_month,
                       month_of_year=month_of_year)
    except ValueError as exc:
        raise UsageError(f"--cron: '{text}' is not a cron expression Celery reads ({exc})") from None


def timing_of(row: dict[str, Any]) -> BaseSchedule:
    """What Celery beat fires a stored schedule on: its crontab, or an interval."""
    if row["cron"]:
        return parse_cron(row["cron"])
    return schedule(timedelta(seconds=row["every_s"]))


def describe_timing(row: dict[str, Any]) -> str:
    """``cron 0 7 * * MON-FRI`` or ``every 30s``, as ``schedule list`` shows it."""
    if row["cron"]:
        return f"cron {row['cron']}"
    seconds = float(row["every_s"])
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"every {seconds / size:g}{unit}"
    return f"every {seconds:g}s"


# -- a person's actions on schedules (each one audit record) --------------------------------------------
def add_schedule(ledger: Ledger, name: str, workflow: str, *, folder: Path | None, file: Path | None,
                 cron: str | None, every: str | None, by: str, origin: str = "cli") -> dict[str, Any]:
    """Check a new schedule and save it (the running beat picks it up at its next tick); return it.

    A folder gets its ``inbox/``, ``processed/`` and ``rejected/`` sub-folders.

    Raises:
        UsageError: the name is taken or malformed, the workflow is not published, the folder or file is
            unusable, the timing does not parse, or not exactly one of each pair was given; nothing is saved.
    """
    if not _NAME.fullmatch(name):
        raise UsageError(f"schedule name '{name}': expected up to 64 letters, digits, '.', '_' or '-'")
    if (folder is None) == (file is None):
        raise UsageError("give exactly one of --folder DIR or --file PATH")
    if (cron is None) == (every is None):
        raise UsageError("give exactly one of --cron \"MIN HOUR DOM MON DOW\" or --every 30s")
    every_s = parse_every(every) if every is not None else None
    if cron is not None:
        cron = " ".join(cron.split())
        parse_cron(cron)
    if ledger.workflows.published_digest(workflow) is None:
        raise UsageError(f"there is no published workflow '{workflow}' in this ledger "
                         "(publish it first: 'autoclerk workflows publish FILE')")
    if folder is not None:
        path = folder.resolve()
        if not path.is_dir():
            raise UsageError(f"--folder {folder}: no such folder (create it first; its inbox/, processed/ and "
                             "rejected/ are made for you)")
        for sub in FOLDERS:
            try:
                (path / sub).mkdir(exist_ok=True)
            except OSError as exc:
                raise UsageError(f"--folder {folder}: cannot make {sub}/ in it ({exc.strerror})") from None
    else:
        assert file is not None
        path = file.resolve()
        if path.suffix.lower() not in CASE_FILE_SUFFIXES:
            raise UsageError(f"--file {file}: expected a .csv, .jsonl or .xlsx file of cases")
        if not path.parent.is_dir() or path.is_dir():
            raise UsageError(f"--file {file}: its folder {path.parent} does not exist, or it is a folder")
    if not ledger.schedules.add(name, workflow, "folder" if folder is not None else "file", str(path), cron=cron,
                                every_s=every_s, by=by):
        raise UsageError(f"there already is a schedule named '{name}' (remove it first: 'autoclerk schedule remove {name}')")
    added = ledger.schedules.get(name)
    assert added is not None
    ledger.audit.record(by, "schedule.add", "schedule", name, origin=origin,
                        detail={"workflow": workflow, "kind": added["kind"], "path": added["path"],
                                "timing": describe_timing(added)})
    return added


def remove_schedule(ledger: Ledger, name: str, *, by: str, origin: str = "cli") -> None:
    """Delete a schedule (the running beat stops firing it at its next tick).

    Raises:
        UsageError: there is no schedule of that name.
    """
    if not ledger.schedules.remove(name):
        raise UsageError(f"there is no schedule named '{name}' (see 'autoclerk schedule list')")
    ledger.audit.record(by, "schedule.remove", "schedule", name, origin=origin)


def run_schedule_now(ledger: Ledger, name: str, *, by: str, origin: str = "cli") -> str | None:
    """Ask the running beat to fire a schedule at its next tick (within a second).

    Returns:
        A warning when no beat is running (the request waits for one), or ``None``.

    Raises:
        UsageError: there is no schedule of that name.
    """
    if not ledger.schedules.request_run(name):
        raise UsageError(f"there is no schedule named '{name}' (see 'autoclerk schedule list')")
    ledger.audit.record(by, "schedule.run_now", "schedule", name, origin=origin)
    if ledger.schedules.lease_holder(BEAT_LEASE) is None:
        return "no beat is running on this ledger; the schedule fires when one starts ('autoclerk beat')"
    return None
