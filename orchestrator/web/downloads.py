"""Streamed downloads of a batch's results (shared by the batch page's links and the API) and of its
refused rows."""

from __future__ import annotations

from fastapi.responses import StreamingResponse

from ..ledger import Ledger
from ..queue import case_results, csv_chunks, jsonl_chunks, rejections_csv_chunks


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
