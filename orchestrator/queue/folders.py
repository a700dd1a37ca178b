"""Watched folders: each CSV, JSONL or XLSX file dropped into ``DIR/inbox/`` becomes a batch.

Layout of a watched folder::

    DIR/inbox/       files are dropped here (write them as NAME.part and rename, or just write them)
    DIR/processed/   each handed-off file, and NAME.results.csv beside it once its batch has finished
    DIR/rejected/    each refused file, and NAME.reason.txt beside it saying why, in plain English

A file is taken only once its size and modification time are the same at two looks in a row (the
schedule's firings), so a file still being written waits; ``*.part`` files and hidden files are never
taken. Each taken file is claimed in the ledger by its SHA-256 first: the same file dropped again is
moved to ``rejected/`` naming the earlier batch, never handed off twice. Handing off goes through
:func:`orchestrator.queue.hand_off`, as ``autoclerk run`` does, so every format intake reads is read here.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import Any

import structlog

from workflows import CasesFileError, LoadedWorkflow

from ..ledger import Ledger
from .handoff import file_sha256, hand_off
from .publisher import Publisher
from .results import export_results
from .schedules import CASE_FILE_SUFFIXES, FOLDERS

log = structlog.get_logger(__name__)

IGNORED_SUFFIXES = (".part",)
"""Files still being written under a temporary name: never taken."""


FOLDER_SHEET_HINT = "save the workbook with the cases on its only sheet, then drop it again"
"""What a watched folder's reason file says of a workbook with several sheets (a schedule names no sheet)."""


class FolderWatch:
    """The watched folders' side of the beat process: what each folder held at the last look, and the
    batches whose results are still to be written."""

    def __init__(self, ledger: Ledger, publisher: Publisher, tz: tzinfo | None = None) -> None:
        self.ledger, self.publisher, self.tz = ledger, publisher, tz  # tz: of a _deadline written without an offset
        self._seen: dict[Path, tuple[int, int]] = {}  # file → (size, mtime_ns) at the last look

    def scan(self, schedule: dict[str, Any], workflow: LoadedWorkflow) -> list[str]:
        """Hand off each stable file in the schedule's ``inbox/``; return one sentence per file taken."""
        folder = Path(schedule["path"])
        for sub in FOLDERS:
            (folder / sub).mkdir(parents=True, exist_ok=True)
        outcomes = []
        for path in sorted((folder / "inbox").iterdir()):
            if path.name.startswith(".") or path.suffix.lower() in IGNORED_SUFFIXES or not path.is_file():
                continue
            if self._stable(path):
                outcomes.append(self._take(schedule["name"], folder, path, workflow))
        self._seen = {p: s for p, s in self._seen.items() if p.exists()}
        return outcomes

    def _stable(self, path: Path) -> bool:
        try:
            stat = path.stat()
        except FileNotFoundError:
            return False
        now = (stat.st_size, stat.st_mtime_ns)
        before, self._seen[path] = self._seen.get(path), now
        return before == now

    def _take(self, schedule: str, folder: Path, path: Path, workflow: LoadedWorkflow) -> str:
        self._seen.pop(path, None)
        if path.suffix.lower() not in CASE_FILE_SUFFIXES:
            return reject(folder, path, f"{path.name} is not a file of cases: a watched folder takes CSV (.csv), "
                                        "JSON lines (.jsonl) and spreadsheet (.xlsx) files.")
        digest = file_sha256(path)
        if digest is None:
            return f"{path.name}: could not be read yet; trying again at the next look"
        earlier = self.ledger.dropped_files.claim(schedule, digest, path.name)
        if earlier is not None:
            when = datetime.fromtimestamp(earlier["dropped_at"], timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            return reject(folder, path, f"{path.name} is the same file (the same content, SHA-256 {digest}) as "
                                        f"{earlier['name']}, dropped on {when} and handed off as batch "
                                        f"{earlier['batch_id']}. It was not handed off again.")
        try:
            receipt = hand_off(self.ledger, self.publisher, workflow, path, raise_when_stopped=False, tz=self.tz,
                               sheet_hint=FOLDER_SHEET_HINT)
        except CasesFileError as exc:  # nothing of it was read: no batch
            self.ledger.dropped_files.forget(schedule, digest)
            return reject(folder, path, f"{path.name} could not be handed off: {exc}. Nothing from it was "
                                        "handed off; fix the file and drop it again.")
        if receipt.stopped_by:  # unreadable part-way: what came before it runs, and its results go beside it
            moved = _free_name(folder / "rejected", path.name, time.strftime("%Y%m%d-%H%M%S"))
            self.ledger.dropped_files.handed_off(schedule, digest, receipt.batch_id, str(moved))
            return reject(folder, path, f"{path.name} stopped being readable part-way: {receipt.stopped_by}. The "
                                        f"{receipt.waiting} case(s) before that point were handed off as batch "
                                        f"{receipt.batch_id}; drop a file of the remaining rows to hand them off.",
                          moved)
        processed = _free_name(folder / "processed", path.name, receipt.batch_id)
        os.replace(path, processed)
        self.ledger.dropped_files.handed_off(schedule, digest, receipt.batch_id, str(processed))
        log.info("dropped file handed off", schedule=schedule, batch=receipt.batch_id, accepted=receipt.accepted)
        return (f"{path.name} → batch {receipt.batch_id} ({receipt.waiting} queued, "
                f"{receipt.rejected + receipt.duplicates} refused)")

    def write_results(self) -> list[str]:
        """Write the results export (csv) beside each processed file whose batch has finished; return them."""
        written = []
        for row in self.ledger.dropped_files.awaiting_results():
            batch = self.ledger.batches.get(row["batch_id"])
            if batch is None or batch.get("finished_at") is None:
                continue
            processed = Path(row["processed_path"])
            out = processed.with_name(f"{processed.stem}.results.csv")
            part = out.with_name(out.name + ".part")
            export_results(self.ledger, row["batch_id"], "csv", part)
            os.replace(part, out)  # a reader never sees half an export
            self.ledger.dropped_files.results_written(row["id"], str(out))
            log.info("results written", batch=row["batch_id"], path=str(out))
            written.append(str(out))
        return written


def reject(folder: Path, path: Path, reason: str, moved: Path | None = None) -> str:
    """Move a dropped file to ``rejected/`` (to ``moved`` when given) with ``NAME.reason.txt`` beside it; return
    the reason."""
    moved = moved or _free_name(folder / "rejected", path.name, time.strftime("%Y%m%d-%H%M%S"))
    os.replace(path, moved)
    moved.with_name(moved.name + ".reason.txt").write_text(reason + "\n", encoding="utf-8")
    log.warning("dropped file rejected", file=path.name, reason=reason)
    return reason


def _free_name(folder: Path, name: str, tag: str) -> Path:
    """``folder/name``, or ``folder/STEM-TAG.SUFFIX`` when a file of that name is already there."""
    target = folder / name
    if not target.exists():
        return target
    stem, suffix = os.path.splitext(name)
    return folder / f"{stem}-{tag}{suffix}"
