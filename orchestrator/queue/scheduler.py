"""Celery beat over the ledger: :class:`LedgerScheduler` reads the schedules from the ledger on every tick,
and a firing hands work off in the beat process.

Why a small :class:`celery.beat.Scheduler` subclass, and not a maintained database scheduler:

- ``sqlalchemy-celery-beat`` (0.8, evaluated) keeps six tables of its own (``celery_periodictask``,
  ``celery_crontabschedule``, ``celery_intervalschedule``, …, in a ``celery_schema`` schema) and creates them
  itself with ``metadata.create_all`` on first use, outside our Alembic migrations; ``django-celery-beat``
  needs Django's ORM. The ledger's tables are owned by our migrations (a test compares the migrated
  database with the models), and a schedule belongs beside the workflow it names and the batches it
  starts. Both also fire by sending a task message, which our work queue does not carry (see below).
- What we add to beat is small: read one small table per tick (a change by ``autoclerk schedule add``,
  ``remove`` or ``run-now`` in another process takes effect within a second, with no restart), keep each
  entry's last run in the ledger (a restarted beat keeps its cadence), and fire in-process.

Beat does all the timing: its heap, ``crontab`` (in the app's timezone, ``AUTOCLERK_TIMEZONE``) and
``schedule`` intervals decide when an entry is due. Only :meth:`LedgerScheduler.apply_entry` differs: a
firing is a hand-off (ledger writes, then the transaction ids published through the outbox to the
workers, as ``autoclerk run`` does), so beat does it itself instead of sending a message. The work queue
carries transaction ids only, the workers refuse anything else, and a watched folder is read by one
process: the one beat of the deployment, which holds the ledger's ``beat`` lease.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from collections.abc import Callable
from typing import Any

import structlog
from celery.beat import ScheduleEntry, Scheduler

from workflows import CasesFileError, LoadedWorkflow

from ..errors import ConfigurationError, LedgerError
from ..ledger import Ledger
from .folders import FolderWatch
from .handoff import hand_off
from .publisher import Publisher
from .schedules import BEAT_LEASE, timing_of

log = structlog.get_logger(__name__)

FIRE_TASK = "autoclerk.fire_schedule"
"""The entries' task name (shown by beat; never sent: :meth:`LedgerScheduler.apply_entry` fires in-process)."""
TICK_S = 1.0
"""The longest beat sleeps: how soon a change to the schedules, a run-now or a finished batch is seen."""
LEASE_TTL_S = 30.0
"""How long the beat lease lasts unrenewed: a beat killed hard blocks a new one this long, at most."""


class ScheduleFiring:
    """What a firing does: hand off a schedule's file, or each stable file of its watched folder."""

    def __init__(self, ledger: Ledger, publisher: Publisher,
                 preflight: Callable[[LoadedWorkflow], None] | None = None, tz: tzinfo | None = None) -> None:
        self.ledger, self.tz = ledger, tz
        """``tz``: the zone of a ``_deadline`` written without an offset (``AUTOCLERK_TIMEZONE``)."""
        self.folders = FolderWatch(ledger, publisher, tz)
        self.publisher = publisher
        self.preflight = preflight
        """Raises ConfigurationError when the bots cannot run a workflow (a missing secret, env value or system
        URL): the firing then hands nothing off, and a folder's files wait in its inbox until it is fixed."""

    def fire(self, schedule: dict[str, Any]) -> str | None:
        """Fire one schedule now; return what came of it, in one sentence (``schedule list`` shows it), or
        ``None`` when a folder held nothing new."""
        workflow = self.ledger.workflows.load_published(schedule["workflow"])
        if workflow is None:
            return f"workflow {schedule['workflow']} is not published; nothing handed off"
        if self.preflight is not None:
            try:
                self.preflight(workflow)
            except ConfigurationError as exc:
                log.warning("schedule not fired: the bots cannot run its workflow", schedule=schedule["name"],
                            reason=str(exc))
                return f"{exc} (the files wait in the inbox)" if schedule["kind"] == "folder" else str(exc)
        if schedule["kind"] == "folder":
            taken = self.folders.scan(schedule, workflow)
            return "; ".join(taken) if taken else None
        path = schedule["path"]
        try:
            receipt = hand_off(self.ledger, self.publisher, workflow, Path(path), tz=self.tz)
        except CasesFileError as exc:
            return f"{exc}; nothing more handed off"
        finished = sum(receipt.already_finished.values())
        return (f"batch {receipt.batch_id}: {receipt.accepted} new, {receipt.resumed} resumed, {finished} already "
                f"finished, {receipt.rejected + receipt.duplicates} refused")


class LedgerScheduler(Scheduler):  # type: ignore[misc]
    """A Celery beat scheduler whose schedules are the ledger's ``schedules`` table (see the module).

    Args:
        ledger: the ledger to read schedules from and hand off into.
        firing: what a due entry does (:class:`ScheduleFiring`).
        owner: this beat's name in the ledger's ``beat`` lease, renewed as it ticks.

    Raises (from :meth:`tick`):
        LedgerError: another beat took the lease (this one stopped ticking longer than the lease lasts).
    """

    Entry = ScheduleEntry
    data: dict[str, ScheduleEntry]

    def __init__(self, *args: Any, ledger: Ledger, firing: ScheduleFiring, owner: str, **kwargs: Any) -> None:
        self.ledger, self.firing, self.owner = ledger, firing, owner
        self._defined: dict[str, tuple[Any, ...]] = {}
        self._lease_renewed = 0.0
        kwargs.pop("schedule_filename", None)  # no shelve file: the ledger holds the schedules
        super().__init__(*args, **kwargs)

    # -- the schedule, from the ledger -----------------------------------------------------------------
    def setup_schedule(self) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Read the schedules again: a new or changed one gets a new entry, a removed one goes, the rest
        keep their entries (and so their place in beat's heap)."""
        entries: dict[str, ScheduleEntry] = {}
        defined: dict[str, tuple[Any, ...]] = {}
        current = self.data
        for row in self.ledger.schedules.all():
            name = row["name"]
            defined[name] = (row["workflow"], row["kind"], row["path"], row["cron"], row["every_s"], row["created_at"])
            if name in current and self._defined.get(name) == defined[name]:
                entries[name] = current[name]
                continue
            last = row["last_run_at"] or time.time()
            entries[name] = self.Entry(name=name, task=FIRE_TASK, schedule=timing_of(row), app=self.app,
                                       last_run_at=datetime.fromtimestamp(last, timezone.utc))
        self.data, self._defined = entries, defined

    # -- beat's loop -----------------------------------------------------------------------------------
    def tick(self, *args: Any, **kwargs: Any) -> float:
        """Renew the lease, read the schedules, fire what someone asked to run now, write finished
        batches' results, then let beat fire what is due."""
        now = time.monotonic()
        if now - self._lease_renewed > LEASE_TTL_S / 6:
            holder = self.ledger.schedules.hold_lease(BEAT_LEASE, self.owner, LEASE_TTL_S)
            if holder is not None:
                raise LedgerError(f"another beat ({holder}) holds this ledger's beat lease; this one "
                                  f"({self.owner}) stops, so that schedules fire once")
            self._lease_renewed = now
        self.refresh()
        for name in self.ledger.schedules.take_run_requests():
            if name in self.data:
                self.fire(name)
        try:
            self.firing.folders.write_results()
        except (OSError, LedgerError) as exc:
            log.warning("results not written; trying again at the next tick", error=str(exc))
        return min(float(super().tick(*args, **kwargs)), TICK_S)

    def apply_entry(self, entry: ScheduleEntry, producer: Any = None) -> None:
        """Fire a due entry in this process (see the module: a firing is a hand-off, not a message)."""
        self.fire(entry.name)

    @property
    def producer(self) -> None:
        return None  # nothing is sent through beat's producer, so it never connects

    def fire(self, name: str) -> str | None:
        """Fire schedule ``name`` now and record when and what came of it; return that sentence (see
        :meth:`ScheduleFiring.fire`)."""
        row = self.ledger.schedules.get(name)
        if row is None:
            return f"schedule {name} was removed"
        started = time.time()
        try:
            outcome = self.firing.fire(row)
        except Exception as exc:  # noqa: BLE001 - one failed firing must not stop beat, nor the next firing
            outcome = f"failed ({type(exc).__name__}: {exc}); it fires again at its next time"
            log.error("schedule failed", schedule=name, error=str(exc))
        self.ledger.schedules.record_run(name, started, outcome)
        if outcome is not None:
            log.info("schedule fired", schedule=name, outcome=outcome)
        return outcome

    def close(self) -> None:
        """Give the beat lease up (another beat may start at once)."""
        super().close()
        self.ledger.schedules.release_lease(BEAT_LEASE, self.owner)
