"""Every case's result, and every batch's reconciliation, read from the ledger without opening its tables.

A case's result has the same keys everywhere (``autoclerk batches show --json``, ``autoclerk results
export``, the batch page's download and ``GET /api/batches/{id}/results``): see :data:`RESULT_KEYS`.
Results stream: a batch of millions is read a page at a time and written row by row, so memory does not
grow with the batch. Fields the workflow's input schema marks ``secret: true`` are masked wherever their
values show (the ledger keeps them, because the bot types them).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from workflows import InputField, mask_text, secret_values

from ..errors import UsageError
from ..ledger import STATES, TERMINAL, Ledger
from .intake import REJECTION_KINDS

RESULT_KEYS = ("case_ref", "state", "attempts", "result_ref", "output", "error_class", "error_message",
               "error_detail", "evidence")
"""A case's result, in this order: the API's keys, the columns of an export."""
FORMATS = ("csv", "jsonl", "xlsx")
XLSX_MAX_CASES = 1_048_575
"""An xlsx sheet holds 1,048,576 rows, the header row included."""


def case_results(ledger: Ledger, batch_id: str, *, state: str | None = None) -> Iterator[dict[str, Any]]:
    """Each case of a batch as a result (:data:`RESULT_KEYS`), in hand-off order, secret fields masked."""
    secret_specs: dict[str, dict[str, InputField]] = {}  # per workflow version: its fields marked secret
    for row in ledger.reports.results(batch_id, state=state):
        digest = row["digest"]
        if digest not in secret_specs:
            inputs = ledger.workflows.load(digest).definition.input
            secret_specs[digest] = {name: spec for name, spec in inputs.items() if spec.secret}
        values = secret_values(secret_specs[digest], row["payload"]) if secret_specs[digest] else ()
        result = {key: row[key] for key in RESULT_KEYS}
        if values:
            result = {key: mask_json(value, values) for key, value in result.items()}
        yield result


def mask_json(value: Any, values: tuple[str, ...]) -> Any:
    """A decoded JSON value with ``values`` masked in every string it holds."""
    if isinstance(value, str):
        return mask_text(value, values)
    if isinstance(value, dict):
        return {k: mask_json(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_json(v, values) for v in value]
    return value


def _cell(value: Any) -> Any:
    """A result's value as one spreadsheet cell: lists and objects as JSON text, nothing as empty."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return value


def _csv_cell(value: Any) -> Any:
    """A cell of a CSV a spreadsheet may open: text starting = + - @ would be a formula, so it is quoted as text."""
    cell = _cell(value)
    return "'" + cell if isinstance(cell, str) and cell[:1] in ("=", "+", "-", "@") else cell


def csv_chunks(results: Iterable[dict[str, Any]], *, rows_per_chunk: int = 500) -> Iterator[str]:
    """The results as CSV text (header first), a few hundred rows per chunk, for a streamed download."""
    return _csv_text(RESULT_KEYS, ([result[key] for key in RESULT_KEYS] for result in results), rows_per_chunk)


AUDIT_KEYS = ("seq", "at", "actor", "action", "object_type", "object_id", "origin", "detail", "prev_hash", "hash")
"""The columns of the audit trail's CSV export (the keys of its JSON lines)."""


def audit_csv_chunks(records: Iterable[dict[str, Any]], *, rows_per_chunk: int = 500) -> Iterator[str]:
    """Audit records as CSV text (the detail as compact JSON), a few hundred per chunk, for a streamed download."""
    return _csv_text(AUDIT_KEYS, ([json.dumps(r[k], ensure_ascii=False, separators=(",", ":")) if k == "detail" else r[k]
                                   for k in AUDIT_KEYS] for r in records), rows_per_chunk)


def rejections_csv_chunks(ledger: Ledger, batch_id: str, *, page: int = 1000) -> Iterator[str]:
    """Every row of a batch's file that was not queued, as CSV (row, field, reason), read a page at a time."""
    def rows() -> Iterator[tuple[Any, ...]]:
        after = 0
        while True:
            found = ledger.reports.rejections(batch_id, after_row=after, limit=page)
            yield from ((r["row"], r["field"], r["reason"]) for r in found)
            if len(found) < page:
                return
            after = found[-1]["row"]

    return _csv_text(("row", "field", "reason"), rows(), page)


def _csv_text(header: Iterable[str], rows: Iterable[Iterable[Any]], rows_per_chunk: int) -> Iterator[str]:
    """Rows as CSV text, header first, ``rows_per_chunk`` rows per chunk; every cell spreadsheet-safe."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for count, row in enumerate(rows, start=1):
        writer.writerow([_csv_cell(value) for value in row])
        if count % rows_per_chunk == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def jsonl_chunks(results: Iterable[dict[str, Any]], *, rows_per_chunk: int = 500) -> Iterator[str]:
    """The results as JSON lines (one object per case), a few hundred per chunk, for a streamed download."""
    lines: list[str] = []
    for result in results:
        lines.append(json.dumps(result, ensure_ascii=False) + "\n")
        if len(lines) >= rows_per_chunk:
            yield "".join(lines)
            lines.clear()
    yield "".join(lines)


def export_results(ledger: Ledger, batch_id: str, fmt: str, out: Path | IO[str], *, state: str | None = None) -> int:
    """Write a batch's results to ``out`` (a path, or an open text stream for csv and jsonl); return how many.

    Raises:
        UsageError: an unknown format, an xlsx export of more cases than a sheet holds, or an xlsx export
            to a stream (it needs a file).
    """
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not '{fmt}'")
    if fmt == "xlsx":
        if not isinstance(out, Path):
            raise UsageError("an xlsx export needs a file: give --out FILE.xlsx")
        total = ledger.reports.count(batch_id, state)
        if total > XLSX_MAX_CASES:
            raise UsageError(f"batch {batch_id} has {total:,} cases, more than an xlsx sheet holds "
                             f"({XLSX_MAX_CASES + 1:,} rows with the header); export it with --format csv")
        return _write_xlsx(case_results(ledger, batch_id, state=state), out)
    chunks = csv_chunks if fmt == "csv" else jsonl_chunks
    counted = _Counted(case_results(ledger, batch_id, state=state))
    if isinstance(out, Path):
        with open(out, "w", encoding="utf-8", newline="") as handle:
            handle.writelines(chunks(counted))
    else:
        out.writelines(chunks(counted))
    return counted.count


class _Counted(Iterator[dict[str, Any]]):
    def __init__(self, results: Iterator[dict[str, Any]]) -> None:
        self._results, self.count = results, 0

    def __next__(self) -> dict[str, Any]:
        result = next(self._results)
        self.count += 1
        return result


def _write_xlsx(results: Iterable[dict[str, Any]], path: Path) -> int:
    """One sheet, header row bold and frozen, written row by row (XlsxWriter's constant-memory mode)."""
    import xlsxwriter  # only an xlsx export pays for the import

    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_urls": False,
                                               "strings_to_formulas": False, "strings_to_numbers": False})
    try:
        sheet = workbook.add_worksheet("results")
        sheet.freeze_panes(1, 0)
        sheet.write_row(0, 0, RESULT_KEYS, workbook.add_format({"bold": True}))
        count = 0
        for count, result in enumerate(results, start=1):
            sheet.write_row(count, 0, [_cell(result[key]) for key in RESULT_KEYS])
    finally:
        workbook.close()
    return count


# -- reconciliation -----------------------------------------------------------------------------------------
OUTCOMES = (("done", "done"), ("handed back to a person", "business_exception"), ("failed", "failed"),
            ("cancelled", "cancelled"))
"""How a reconciliation names the terminal states (label, state)."""


@dataclass
class Reconciliation:
    """A batch's two sums: rows read = accepted + rejected (by kind); accepted = each outcome + still in
    progress (+ cases a later hand-off of the same references took over). ``balanced`` says both hold."""

    batch_id: str
    workflow: str
    workflow_version: int | None
    source_name: str
    input_sha256: str | None
    handed_off_by: str | None
    handed_off_at: float
    state: str
    intake: str
    rows_read: int
    accepted: int
    rejected: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    in_progress: int = 0
    moved_to_later_batch: int = 0
    open_exceptions: int = 0
    verified: int = 0
    unverified: int = 0
    verify_failed: int = 0

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    @property
    def balanced(self) -> bool:
        return (self.rows_read == self.accepted + self.rejected_total
                and self.accepted == sum(self.outcomes.values()) + self.in_progress + self.moved_to_later_batch)

    def as_json(self) -> dict[str, Any]:
        return {"batch_id": self.batch_id, "workflow": self.workflow, "workflow_version": self.workflow_version,
                "source_name": self.source_name, "input_sha256": self.input_sha256,
                "handed_off_by": self.handed_off_by, "handed_off_at": self.handed_off_at, "state": self.state,
                "intake": self.intake, "rows_read": self.rows_read, "accepted": self.accepted,
                "rejected": self.rejected_total, "rejected_by_kind": self.rejected, "outcomes": self.outcomes,
                "in_progress": self.in_progress, "moved_to_later_batch": self.moved_to_later_batch,
                "open_exceptions": self.open_exceptions, "verified": self.verified, "unverified": self.unverified,
                "verify_failed": self.verify_failed, "balanced": self.balanced}

    def lines(self) -> list[str]:
        """The report as plain-English lines, the two sums spelled out."""
        when = dt.datetime.fromtimestamp(self.handed_off_at, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        version = f" v{self.workflow_version}" if self.workflow_version is not None else ""
        lines = [f"batch {self.batch_id}: workflow {self.workflow}{version}, {self.state}",
                 f"  file {self.source_name}, SHA-256 {self.input_sha256 or 'not recorded'}",
                 f"  handed off by {self.handed_off_by or 'the command line'} at {when}",
                 f"rows read {self.rows_read:,} = accepted {self.accepted:,} + rejected {self.rejected_total:,}"]
        lines += [f"  rejected: {REJECTION_KINDS.get(kind, kind)}: {n:,}" for kind, n in sorted(self.rejected.items())]
        parts = [f"{label} {self.outcomes[label]:,}" for label, _ in OUTCOMES]
        parts.append(f"still in progress {self.in_progress:,}")
        if self.moved_to_later_batch:
            parts.append(f"taken over by a later batch {self.moved_to_later_batch:,}")
        lines.append(f"accepted {self.accepted:,} = " + " + ".join(parts))
        if self.open_exceptions:
            lines.append(f"  of those handed back, {self.open_exceptions:,} still wait for a person")
        lines.append(f"  of those done, {self.verified:,} verified in the target system, {self.unverified:,} submitted "
                     f"but not verified; {self.verify_failed:,} submitted but not kept (verify_failed, handed back)")
        if self.intake == "receiving":
            lines.append("  the file is still being received: the sums are not final")
        lines.append("both sums hold" if self.balanced else "THE SUMS DO NOT HOLD: the batch's figures disagree")
        return lines


def reconcile(ledger: Ledger, batch_id: str) -> Reconciliation | None:
    """A batch's reconciliation (``None`` when there is no such batch)."""
    found = ledger.reports.reconciliation(batch_id)
    if found is None:
        return None
    batch, counts = found["batch"], found["counts"]
    total = sum(counts.values())
    accepted = batch["accepted"] if batch["accepted"] is not None else total
    rows_read = batch["rows_read"] if batch["rows_read"] is not None else accepted + sum(found["rejected"].values())
    return Reconciliation(
        batch_id=batch_id, workflow=batch["workflow"], workflow_version=batch["version"],
        source_name=batch["source_name"], input_sha256=batch["input_sha256"], handed_off_by=batch["created_by"],
        handed_off_at=batch["created_at"], state=batch["state"], intake=batch["intake"], rows_read=rows_read,
        accepted=accepted, rejected=found["rejected"], outcomes={label: counts[s] for label, s in OUTCOMES},
        in_progress=sum(counts[s] for s in STATES if s not in TERMINAL),
        moved_to_later_batch=max(0, accepted - total), open_exceptions=found["open_exceptions"],
        **found["verification"])
