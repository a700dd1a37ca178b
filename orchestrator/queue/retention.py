"""Retention and erasure: finished cases moved from the ledger into a compressed archive, and one case's
personal data erased on request.

**The archive.** One run of :func:`prune_ledger` writes one file, ``autoclerk-prune-<UTC time>.jsonl.gz`` (time to the
microsecond)
(gzip, one JSON object per line), and copies the pruned cases' evidence folders beside it, under
``autoclerk-prune-<UTC time>-evidence/<workflow>/<case>/``. The first line describes the run
(``{"table": "prune", …}``); every other line is ``{"table": T, "row": {…}}``, ``T`` being the ledger table it
came from (``transactions``, ``transaction_events``, ``case_actions``, ``batch_rejections``) or ``evidence``
(the files copied for a case). A case's JSON columns are decoded, and the fields its workflow marks
``secret: true`` are masked as the ledger's views mask them (in its data, output, errors and history, and in
the notes and details of its actions and events). Each chunk is written and flushed to disk before the
ledger's transaction that deletes it commits; a run cut short leaves at most its last chunk both archived
and still in the ledger (a later run archives it again).
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import re
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from bots import evidence_folder
from workflows import InputField, mask_case, mask_text, secret_values

from ..errors import UsageError
from ..ledger import Ledger, PrunedChunk
from .results import mask_json

_AGE = re.compile(r"^(\d+)d$")
SQLITE_PAUSE_S = 0.1
"""On SQLite, the pause after each chunk: one writer holds the whole database, and a worker waiting for the
lock retries every 100 ms at most (its busy handler), so without the pause the next chunk would take the lock
again before the worker woke. PostgreSQL locks rows, and needs none."""


def cutoff_time(text: str, now: float, tz: dt.tzinfo = dt.timezone.utc) -> float:
    """``--finished-before``: an age in days (``400d``) or an ISO 8601 date or time (without an offset: in ``tz``,
    the command line's ``AUTOCLERK_TIMEZONE``).

    Raises:
        UsageError: neither.
    """
    age = _AGE.match(text.strip())
    if age:
        return now - int(age.group(1)) * 86400
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--finished-before must be an age in days such as 400d, or a date such as 2025-01-31, "
                         f"not '{text}'") from None
    return (when if when.tzinfo else when.replace(tzinfo=tz)).timestamp()


@dataclass
class PruneSummary:
    """What a prune took (or, on a dry run, would take) out of the ledger."""

    finished_before: float
    dry_run: bool
    archive: Path | None = None
    evidence_dir: Path | None = None
    batches: set[str] = field(default_factory=set)
    by_state: Counter[str] = field(default_factory=Counter)
    events: int = 0
    case_actions: int = 0
    batch_rejections: int = 0
    evidence_files: int = 0

    @property
    def cases(self) -> int:
        return sum(self.by_state.values())

    def as_json(self) -> dict[str, Any]:
        return {"finished_before": _iso(self.finished_before), "dry_run": self.dry_run,
                "archive": str(self.archive) if self.archive else None,
                "evidence_dir": str(self.evidence_dir) if self.evidence_dir else None,
                "batches": len(self.batches), "cases": self.cases, "by_state": dict(sorted(self.by_state.items())),
                "events": self.events, "case_actions": self.case_actions, "batch_rejections": self.batch_rejections,
                "evidence_files": self.evidence_files}

    def line(self) -> str:
        """The summary as one plain-English line."""
        states = ", ".join(f"{state.replace('_', ' ')} {n:,}" for state, n in sorted(self.by_state.items()))
        verb = "would prune" if self.dry_run else "pruned"
        text = (f"{verb} {self.cases:,} cases finished before {_iso(self.finished_before)}"
                f"{f' ({states})' if states else ''} from {len(self.batches):,} batches, with {self.events:,} state "
                f"changes, {self.case_actions:,} case actions, {self.batch_rejections:,} refused rows and "
                f"{self.evidence_files:,} evidence files")
        if self.dry_run:
            return text + "; nothing was changed"
        return text + (f"; archive {self.archive}" if self.archive else "; no archive was kept (--no-archive)")


def prune_ledger(ledger: Ledger, *, finished_before: float, archive_dir: Path | None, artifacts_dir: Path,
                 dry_run: bool = False, chunk: int = 500, now: float | None = None) -> PruneSummary:
    """Move finished cases (see :mod:`orchestrator.ledger.retention` for which) with their state changes, the
    people's actions and their evidence into an archive in ``archive_dir`` (``None``: keep none), and delete
    them from the ledger ``chunk`` cases per database transaction. Batch totals stay: what goes is counted.

    Raises:
        UsageError: the archive folder cannot be written.
    """
    summary = PruneSummary(finished_before, dry_run)
    artifacts = artifacts_dir.resolve()
    if dry_run:
        for batch_id in ledger.retention.batches(finished_before):
            left = ledger.retention.cases_left(batch_id)
            taken = 0
            for case in ledger.retention.prunable(batch_id, finished_before):
                taken += 1
                summary.batches.add(batch_id)
                summary.by_state[case["state"]] += 1
                summary.events += case["events"]
                summary.case_actions += case["actions"]
                folder = evidence_folder(artifacts, case["workflow"], case["case_ref"])
                summary.evidence_files += len(_evidence_files(artifacts, folder, _listed(case)))
            if taken == left:
                summary.batch_rejections += ledger.retention.rejections_left(batch_id)
        return summary
    sqlite = ledger.engine.dialect.name == "sqlite"
    with _Archive.open(archive_dir, ledger, finished_before, now) as archive:
        summary.archive = archive.path if archive else None
        for batch_id in ledger.retention.batches(finished_before):
            while True:
                doomed: list[tuple[Path, list[Path]]] = []

                def keep(found: PrunedChunk) -> None:
                    doomed.clear()
                    history: dict[int, list[tuple[str, dict[str, Any]]]] = {}
                    for table, rows in (("transaction_events", found.events), ("case_actions", found.actions)):
                        for row in rows:
                            history.setdefault(row["transaction_id"], []).append((table, row))
                    for case in found.cases:
                        folder = evidence_folder(artifacts, case["workflow"], case["case_ref"])
                        files = _evidence_files(artifacts, folder, _listed(case))
                        doomed.append((folder, files))
                        if archive:
                            archive.case(ledger, case, history.get(case["id"], []), files, artifacts)
                    if archive:
                        archive.sync()

                pruned = ledger.retention.prune_cases(batch_id, finished_before, chunk, keep)
                if not pruned.cases:
                    break
                summary.batches.add(batch_id)
                summary.by_state.update(case["state"] for case in pruned.cases)
                summary.events += len(pruned.events)
                summary.case_actions += len(pruned.actions)
                for folder, files in doomed:  # the ledger no longer lists them: their copies are archived
                    summary.evidence_files += len(files)
                    _remove(folder, files, artifacts)
                if sqlite:
                    time.sleep(SQLITE_PAUSE_S)
            while True:
                def keep_rejections(found: PrunedChunk) -> None:
                    if archive:
                        archive.rows("batch_rejections", found.rejections)
                        archive.sync()

                gone = ledger.retention.prune_rejections(batch_id, chunk, keep_rejections)
                if not gone.rejections:
                    break
                summary.batch_rejections += len(gone.rejections)
        if archive:
            summary.evidence_dir = archive.evidence_dir if archive.evidence_dir.exists() else None
    if archive and summary.cases == 0 and summary.batch_rejections == 0:
        archive.path.unlink(missing_ok=True)  # nothing went: no empty archive left behind
        summary.archive = None
    return summary


def erase_case(ledger: Ledger, tx_id: int, by: str, reason: str, artifacts_dir: Path, *, origin: str = "cli") -> bool:
    """Erase the personal data of one case that has an outcome (see :meth:`Retention.erase
    <orchestrator.ledger.Retention.erase>`), and its evidence files under ``artifacts_dir``: the one place an
    erasure is done, recorded in the audit trail (with the reason; never the data). Returns ``False`` when it
    was already erased (and records nothing).

    Raises:
        LedgerError: there is no such case, it is still in work, or ``reason`` is empty.
    """
    artifacts = artifacts_dir.resolve()

    def forget(case: dict[str, Any]) -> None:
        folder = evidence_folder(artifacts, case["workflow"], case["case_ref"])
        _remove(folder, _evidence_files(artifacts, folder, [Path(p) for p in case["evidence"]]), artifacts)

    case = ledger.cases.get(tx_id)
    erased = ledger.retention.erase(tx_id, by, reason, forget)
    if erased and case is not None:  # the reference and workflow name the transaction (the fact kept), never its data
        ledger.audit.record(by.removeprefix("cli:"), "case.erase", "case", tx_id, origin=origin,
                            detail={"reason": reason, "case_ref": case["case_ref"], "workflow": case["workflow"]})
    return erased


# -- the archive file ---------------------------------------------------------------------------------------
class _Archive:
    """One run's gzip JSON-lines file and the folder its evidence is copied into."""

    def __init__(self, path: Path, raw: IO[bytes]) -> None:
        self.path, self._raw = path, raw
        self._gz = gzip.GzipFile(fileobj=raw, mode="wb", filename="")
        self.evidence_dir = path.with_name(path.name.removesuffix(".jsonl.gz") + "-evidence")
        self._secrets: dict[str, dict[str, InputField]] = {}

    @classmethod
    def open(cls, folder: Path | None, ledger: Ledger, finished_before: float, now: float | None) -> Any:
        """A context manager giving the archive (``None`` when ``folder`` is ``None``)."""
        from contextlib import nullcontext

        if folder is None:
            return nullcontext(None)
        started = dt.datetime.now(dt.timezone.utc) if now is None else dt.datetime.fromtimestamp(now, dt.timezone.utc)
        path = folder / f"autoclerk-prune-{started.strftime('%Y%m%dT%H%M%S.%f')}Z.jsonl.gz"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            raw = open(path, "xb")  # noqa: SIM115 - closed by __exit__
        except FileExistsError:
            raise UsageError(f"the archive {path} already exists; run the prune again") from None
        except OSError as exc:
            raise UsageError(f"the archive folder {folder} cannot be written ({exc.strerror})") from None
        archive = cls(path, raw)
        archive._line({"table": "prune", "ledger_id": ledger.ledger_id, "started_at": started.isoformat(),
                       "finished_before": _iso(finished_before), "format": 1})
        return archive

    def __enter__(self) -> _Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self._gz.close()
        self._raw.close()

    def _line(self, record: dict[str, Any]) -> None:
        self._gz.write((json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8"))

    def rows(self, table: str, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self._line({"table": table, "row": row})

    def case(self, ledger: Ledger, case: dict[str, Any], history: list[tuple[str, dict[str, Any]]], files: list[Path],
             artifacts: Path) -> None:
        """A pruned case, its events and actions (``(table, row)``; secret fields masked), and a copy of its
        evidence."""
        if case["digest"] not in self._secrets:
            inputs = ledger.workflows.load(case["digest"]).definition.input
            self._secrets[case["digest"]] = {name: spec for name, spec in inputs.items() if spec.secret}
        secret = self._secrets[case["digest"]]
        payload = json.loads(case["payload"])
        values = secret_values(secret, payload) if secret else ()
        row = {**case, "payload": mask_case(secret, payload) if secret else payload,
               "output": json.loads(case["output"]) if case["output"] else None,
               "evidence": json.loads(case["evidence"]) if case["evidence"] else [],
               "history": json.loads(case["history"])}
        for key in ("output", "history", "error_message", "error_detail"):
            row[key] = mask_json(row[key], values) if values else row[key]
        self._line({"table": "transactions", "row": row})
        for table, one in history:
            text = "detail" if table == "transaction_events" else "note"
            masked = mask_text(one[text], values) if values and one[text] else one[text]
            self._line({"table": table, "row": {**one, text: masked}})
        copied = []
        for path in files:
            target = self.evidence_dir / path.relative_to(artifacts)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
            copied.append(str(target.relative_to(self.path.parent)))
        if copied:
            self._line({"table": "evidence", "row": {"transaction_id": case["id"], "workflow": case["workflow"],
                                                     "case_ref": case["case_ref"], "files": copied}})

    def sync(self) -> None:
        """Flush what is written to disk (before the ledger deletes it)."""
        self._gz.flush()
        self._raw.flush()
        os.fsync(self._raw.fileno())


# -- evidence files ------------------------------------------------------------------------------------------
def _listed(case: dict[str, Any]) -> list[Path]:
    """The evidence files a case's row lists (its last attempt's and every attempt's in its history)."""
    paths = json.loads(case["evidence"]) if case.get("evidence") else []
    for attempt in json.loads(case["history"]) if case.get("history") else []:
        paths += attempt.get("evidence") or []
    return [Path(p) for p in dict.fromkeys(paths)]


def _evidence_files(artifacts: Path, folder: Path, listed: list[Path]) -> list[Path]:
    """A case's evidence files that exist: everything in its ``folder`` under the artifacts directory, and any
    other file it lists there (nothing outside the artifacts directory is ever touched)."""
    found = [p for p in sorted(folder.rglob("*")) if p.is_file()] if folder.is_dir() else []
    for path in listed:
        resolved = path.resolve()
        if resolved.is_relative_to(artifacts) and resolved.is_file() and resolved not in found:
            found.append(resolved)
    return found


def _remove(folder: Path, files: list[Path], artifacts: Path) -> None:
    for path in files:
        path.unlink(missing_ok=True)
    if folder.is_dir() and folder.resolve().is_relative_to(artifacts):
        shutil.rmtree(folder, ignore_errors=True)


def _iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).isoformat(timespec="seconds")
