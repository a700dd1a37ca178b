"""Reading the file of a ``multipart/form-data`` upload while it arrives, so memory does not grow with it.

The request body is parsed by python-multipart's streaming parser, chunk by chunk, as the reader asks
for more: rows are checked and queued while the rest of the file is still on the wire, and a slow
reader slows the sender (the server stops reading the socket). Small fields that come before the file
(the CSRF token, the workflow) are kept; a field over :data:`MAX_FIELD_BYTES` is refused.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterator

from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from ..errors import OrchestratorError

MAX_FIELD_BYTES = 4096
MAX_NAME_CHARS = 120


class UploadError(OrchestratorError):
    """The body is not a usable upload (the message says why, in one sentence)."""


class UploadTooLarge(UploadError):
    """The body is larger than the service takes."""


def boundary_of(content_type: str) -> bytes:
    """The multipart boundary of a ``Content-Type`` header.

    Raises:
        UploadError: the request is not ``multipart/form-data`` with a boundary.
    """
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise UploadError("expected a multipart/form-data upload with the file in the field 'file'")
    return boundary


def safe_name(filename: str) -> str:
    """A file name as it is stored and shown: the last path part, no control characters, bounded length."""
    name = re.split(r"[\\/]", filename)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip().lstrip(".") or "upload"
    return name[:MAX_NAME_CHARS]


class MultipartFile(io.RawIOBase):
    """The bytes of one file field of a multipart body, readable as a stream.

    Args:
        chunks: the request body as it arrives.
        boundary: from :func:`boundary_of`.
        file_field: the name of the field holding the file.
        max_bytes: the most body bytes read before :class:`UploadTooLarge`.

    Example::

        upload = MultipartFile(body_chunks, boundary_of(content_type))
        if upload.wait_for_file():
            text = io.TextIOWrapper(io.BufferedReader(upload), encoding="utf-8", newline="")
    """

    def __init__(self, chunks: Iterator[bytes], boundary: bytes, *, file_field: str = "file",
                 max_bytes: float = float("inf")) -> None:
        super().__init__()
        self._chunks, self.file_field, self.max_bytes = chunks, file_field, max_bytes
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.received = 0
        self._sha256 = hashlib.sha256()
        self._out = bytearray()
        self._header_name = b""
        self._header_value = b""
        self._part_name: str | None = None
        self._part_value = bytearray()
        self._in_file = False
        self._file_started = False
        self._file_done = False
        self._body_done = False
        self._parser = MultipartParser(boundary, {
            "on_part_begin": self._part_begin, "on_header_field": self._header_field,
            "on_header_value": self._header_value_data, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished, "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        })
        self._headers: dict[bytes, bytes] = {}

    # -- the parser's callbacks ------------------------------------------------------------------------
    def _part_begin(self) -> None:
        self._headers, self._part_name, self._part_value = {}, None, bytearray()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name, self._header_value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._part_name = options.get(b"name", b"").decode("utf-8", "replace")
        if self._part_name == self.file_field and not self._file_started:
            self._in_file = self._file_started = True
            self.filename = safe_name(options.get(b"filename", b"").decode("utf-8", "replace"))

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self._out += data[start:end]
            self._sha256.update(data[start:end])
            return
        self._part_value += data[start:end]
        if len(self._part_value) > MAX_FIELD_BYTES:
            raise UploadError(f"the form field '{self._part_name}' is longer than {MAX_FIELD_BYTES} bytes")

    def _part_end(self) -> None:
        if self._in_file:
            self._in_file, self._file_done = False, True
        elif self._part_name:
            self.fields[self._part_name] = self._part_value.decode("utf-8", "replace")

    # -- pumping the body through the parser -----------------------------------------------------------
    def _pump(self) -> bool:
        """Feed the next chunk to the parser; ``False`` when the body has ended."""
        if self._body_done:
            return False
        chunk = next(self._chunks, None)
        if chunk is None:
            self._body_done = True
            if self._in_file:
                raise UploadError("the upload ended before the file did (the connection was cut?)")
            return False
        self.received += len(chunk)
        if self.received > self.max_bytes:
            raise UploadTooLarge(f"the upload is larger than {self.max_bytes / 2**20:,.0f} MiB")
        try:
            self._parser.write(chunk)
        except MultipartParseError:
            raise UploadError("the body is not valid multipart/form-data") from None
        return True

    def file_sha256(self) -> str | None:
        """The SHA-256 of the file's bytes, once the file has been received to its end (``None`` before)."""
        return self._sha256.hexdigest() if self._file_done else None

    def wait_for_file(self) -> bool:
        """Read the fields before the file, up to the start of its data; whether the file field is there."""
        while not self._file_started and self._pump():
            pass
        return self._file_started

    def finish(self) -> None:
        """Read the rest of the body (fields after the file), so the response can follow it."""
        while self._pump():
            pass

    def discard(self) -> None:
        """Read and drop the rest of the body without parsing it (a refused upload), within ``max_bytes``."""
        if self._body_done:
            return
        for chunk in self._chunks:
            self.received += len(chunk)
            if self.received > self.max_bytes:
                raise UploadTooLarge(f"the upload is larger than {self.max_bytes / 2**20:,.0f} MiB")
        self._body_done = True

    # -- io.RawIOBase ----------------------------------------------------------------------------------
    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._out and not self._file_done and self._pump():
            pass
        size = min(len(buffer), len(self._out))
        buffer[:size] = self._out[:size]
        del self._out[:size]
        return size


MAX_WORKFLOW_FILES = 20
MAX_WORKFLOW_BYTES = 256 * 1024


async def workflow_upload(request: Request) -> tuple[FormData, dict[str, bytes]]:
    """The form of a workflow upload (page or API) and its files by safe name, within the size limits."""
    form = await request.form(max_files=MAX_WORKFLOW_FILES, max_fields=10, max_part_size=MAX_WORKFLOW_BYTES)
    files = {safe_name(u.filename): await u.read(MAX_WORKFLOW_BYTES + 1)
             for u in form.getlist("files") if isinstance(u, UploadFile) and u.filename}
    return form, files
