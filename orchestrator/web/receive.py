"""Receiving a batch upload over HTTP (the page's form and ``POST /api/batches`` alike).

The body is read in a worker thread, one chunk at a time, straight from the connection: the rows are
checked and queued while the rest arrives, so neither memory nor disk grows with the file. An upload
that turns out to be unusable (not UTF-8, no header, lines without end, not multipart at all) is
refused with one sentence; the rest of its body is read and dropped, within the size limit, so the
client gets that answer instead of a broken connection. Rows accepted before an unreadable stretch are
kept and run.

An ``.xlsx`` workbook is the exception: it is a zip, whose directory is at its end, so it is spooled to
a temporary file first (within the same size limit, hashed as it arrives like any upload) and handed
off from there by :func:`orchestrator.queue.hand_off`, then deleted.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.from_thread
import structlog
from fastapi import Request

from workflows import CasesFileError, LoadedWorkflow

from ..accounts import User
from ..deadlines import DeadlineError
from ..errors import ConfigurationError
from ..queue import JSON_LINES_SUFFIXES, Receipt, is_workbook
from .auth import CSRF_FIELD, check_csrf, origin_of
from .service import HandoffService
from .upload import MultipartFile, UploadError, UploadTooLarge, boundary_of

READ_BUFFER = 64 * 1024
log = structlog.get_logger(__name__)


@dataclass
class Refusal:
    """Why an upload was refused, and the HTTP status that says so."""

    status: int
    message: str
    field: str = "file"
    """The form field the refusal is about (``file``, ``deadline`` or ``within``)."""


def _deadline_refusal(when: str, span: str) -> Refusal:
    """A due date the hand-off cannot read, in the words of the form's fields."""
    if when and span:
        return Refusal(422, "Give either a due date or a time from now, not both", "deadline")
    if when:
        return Refusal(422, f"Enter the due date as a date and time, such as 2026-12-24 17:00 (you entered '{when}')",
                       "deadline")
    return Refusal(422, f"Enter the time from now as a number and a unit, such as 4h, 3d or 2wd (you entered '{span}')",
                   "within")


async def receive_batch(request: Request, service: HandoffService, user: User, loaded: LoadedWorkflow, *,
                        csrf_token: str | None = None, deadline: str | None = None, within: str | None = None,
                        sheet: str | None = None, sheet_hint: str) -> Receipt | Refusal:
    """Hand off the file in the ``file`` field of a multipart request, as it arrives.

    Args:
        csrf_token: for a page's form: the session's token, which the form must send in ``csrf_token``
            before the file (the API, with its bearer token, passes ``None``).
        deadline, within: the batch's deadline (the API's query parameters); without them, the form's fields
            ``deadline`` and ``within``, sent before the file, are read.
        sheet: the sheet of an ``.xlsx`` upload that holds the cases; without it, a ``sheet`` field of
            the form is taken (before or after the file).
        sheet_hint: how to tell the person to name the sheet when the workbook has several.

    Raises:
        Refused: the form's CSRF token is missing or wrong (nothing was read beyond the fields before the file).
    """
    limit = service.settings.max_upload_mb * 2**20
    try:
        boundary = boundary_of(request.headers.get("content-type", ""))
    except UploadError as exc:
        return Refusal(415, str(exc))
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        return Refusal(413, f"the upload is larger than {service.settings.max_upload_mb:,.0f} MiB")
    body = request.stream().__aiter__()

    async def next_chunk() -> bytes:
        return await body.__anext__()

    def chunks() -> Iterator[bytes]:
        while True:
            try:
                chunk = anyio.from_thread.run(next_chunk)
            except StopAsyncIteration:
                return
            if chunk:
                yield chunk

    received: dict[str, int] = {}
    warnings: list[str] = []

    origin = origin_of(request)

    def work() -> Receipt | Refusal:
        upload = MultipartFile(chunks(), boundary, max_bytes=limit)
        try:
            return handle(upload)
        finally:
            received["bytes"] = upload.received

    def handle(upload: MultipartFile) -> Receipt | Refusal:
        try:
            if not upload.wait_for_file():
                return Refusal(422, "the upload has no file in the field 'file'")
            if csrf_token is not None:
                check_csrf(upload.fields.get(CSRF_FIELD, ""), csrf_token)
            when, span = deadline or upload.fields.get("deadline", "").strip(), within or upload.fields.get("within", "").strip()
            try:
                due = service.settings.batch_deadline(when or None, span or None)
            except DeadlineError:
                upload.discard()
                return _deadline_refusal(when, span)
            try:  # after the request's own checks, before a byte of the file is read: nothing is queued
                warnings[:] = [w for w in [service.preflight(loaded)] if w]
            except ConfigurationError as exc:
                upload.discard()
                return Refusal(503, str(exc))
            name = upload.filename or "upload"
            if is_workbook(name):
                return workbook(upload, name, due)
            if sheet or upload.fields.get("sheet", "").strip():
                upload.discard()
                return Refusal(422, f"{name}: a sheet was named, but only an .xlsx workbook has sheets")
            text = io.TextIOWrapper(io.BufferedReader(upload, READ_BUFFER), encoding="utf-8-sig", newline="")
            try:
                receipt = service.hand_off_stream(user, loaded, text, name, origin=origin,
                                                  json_lines=name.lower().endswith(JSON_LINES_SUFFIXES),
                                                  source_sha256=upload.file_sha256, deadline=due)
            except CasesFileError as exc:
                upload.discard()
                return Refusal(422, str(exc))
            if receipt.stopped_by:
                upload.discard()
            else:
                upload.finish()
            return receipt
        except UploadTooLarge as exc:
            return Refusal(413, str(exc))
        except UploadError as exc:
            try:
                upload.discard()
            except UploadTooLarge:
                pass
            return Refusal(422, str(exc))

    def workbook(upload: MultipartFile, name: str, due: float | None) -> Receipt | Refusal:
        with tempfile.TemporaryDirectory(prefix="autoclerk-upload-") as folder:
            spooled = Path(folder) / "cases.xlsx"
            with open(spooled, "wb") as out:
                shutil.copyfileobj(io.BufferedReader(upload, READ_BUFFER), out, READ_BUFFER)
            upload.finish()  # a sheet named after the file is read too
            chosen = sheet or upload.fields.get("sheet", "").strip() or None
            try:
                return service.hand_off_file(user, loaded, spooled, name, origin=origin, sheet=chosen,
                                             sheet_hint=sheet_hint, deadline=due)
            except CasesFileError as exc:
                return Refusal(422, str(exc))

    outcome = await anyio.to_thread.run_sync(work)
    if isinstance(outcome, Receipt):
        outcome.warnings.extend(warnings)
    if isinstance(outcome, Refusal):
        log.info("upload refused", status=outcome.status, reason=outcome.message, by=user.username,
                 workflow=loaded.definition.name, received_bytes=received.get("bytes", 0))
    return outcome
