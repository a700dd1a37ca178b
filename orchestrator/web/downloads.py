"""Streamed downloads of a batch's results (shared by the batch page's links and the API), of its
refused rows, and of the audit trail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi.responses import StreamingResponse

from ..ledger import Ledger
from ..queue import audit_csv_chunks, case_results, csv_chunks, jsonl_chunks, rejections_csv_chunks


def results_download(ledger: Ledger, batch_id: str, fmt: str, state: str | None = None) -> StreamingResponse:
    """A batch's results (``csv`` or ``jsonl``) as a download, read from the ledger a page at a time while it is
    sent (Starlette runs the generator in a worker thread), so memory does not grow with the batch."""
    rows = case_results(ledger, batch_id, state=state)
    chunks = csv_chunks(rows) if fmt == "csv" else jsonl_chunks(rows)
    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson; charset=utf-8"
    return StreamingResponse(chunks, media_type=media, headers={
        "content-disposition": f'attachment; filename="batch-{batch_id}-results.{fmt}"'})


def rejections_download(ledger: Ledger, batch_id: str) -> StreamingResponse:
    """Every row of a batch's file that was not queued, as a CSV download, streamed a page at a time."""
    return StreamingResponse(rejections_csv_chunks(ledger, batch_id), media_type="text/csv; charset=utf-8", headers={
        "content-disposition": f'attachment; filename="batch-{batch_id}-rejected-rows.csv"'})


def audit_download(ledger: Ledger, fmt: str, **filters: Any) -> StreamingResponse:
    """The audit trail (``csv`` or ``jsonl``), filtered as :meth:`AuditTrail.records`, oldest first, streamed a
    page at a time."""
    records = ledger.audit.iter_records(**filters)

    def lines() -> Iterator[str]:
        for record in records:
            yield json.dumps(record, ensure_ascii=False) + "\n"

    chunks = audit_csv_chunks(records) if fmt == "csv" else lines()
    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson; charset=utf-8"
    return StreamingResponse(chunks, media_type=media, headers={
        "content-disposition": f'attachment; filename="audit-trail.{fmt}"'})
