"""Streaming multipart uploads: straight from the socket into encrypted staging files.

Starlette's form parser spools each file whole before the route sees it and has no
per-file limit, so uploads are parsed here, chunk by chunk, with python-multipart: each
file part goes to a :class:`~secops.services.storage.StagedBlob` (hashed, counted,
encrypted as it arrives) and plain fields are kept up to a small cap. Parsing, hashing
and encrypting run on the event loop as the chunks arrive (a 64 KiB chunk costs about
a tenth of a millisecond); only writing to disk, which can block, goes to a thread, a
batch at a time. Files beyond the size limit or the per-request count raise a problem
(413/422), and so do a part whose headers pass 4 KiB or 8 lines and a body of more
parts than files and fields allowed; the rest of the body is then read and dropped, so the client receives the
answer rather than a reset connection. On any failure every staged file of the request
is removed: an upload leaves either complete files or nothing.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from secops.errors import InvalidInput, SecOpsError
from secops.services.storage import BlobStore, StagedBlob

log = logging.getLogger("secops.api.uploads")
FIELD_LIMIT = 64 * 1024
HEADER_LIMIT = 4096  # bytes of one part's headers, names and values together
HEADERS_PER_PART = 8
MAX_FIELDS = 16
WRITE_BATCH = 1024 * 1024  # body bytes between writes of what staged files hold
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")


def safe_filename(raw: str) -> str:
    """The last path component of a client-given name, without control characters."""
    name = _UNSAFE.sub("_", os.path.basename(raw.replace("\\", "/")))
    return name.strip()[:255] or "upload"


class MultipartUpload:
    """Receives one multipart body; ``files`` and ``fields`` are ready after :meth:`finish`."""

    def __init__(self, boundary: bytes, *, store: BlobStore, max_file_bytes: int,
                 max_files: int, file_field: str = "file") -> None:
        self.store = store
        self.max_file_bytes = max_file_bytes
        self.max_files = max_files
        self.file_fields = {file_field, file_field + "s", file_field + "[]"}
        self.files: list[StagedBlob] = []
        self.fields: dict[str, str] = {}
        self._header_field = b""
        self._header_value = b""
        self._header_bytes = 0
        self._header_count = 0
        self._parts = 0
        self._disposition = b""
        self._current: StagedBlob | None = None
        self._field: tuple[str, bytearray] | None = None
        callbacks: dict[str, Callable[..., None]] = {
            "on_part_begin": self._part_begin, "on_part_data": self._part_data,
            "on_part_end": self._part_end, "on_header_field": self._header_field_cb,
            "on_header_value": self._header_value_cb, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
        }
        self._parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]

    def _part_begin(self) -> None:
        # A body of many tiny parts (or parts repeating one field name, which would not
        # grow ``fields``) is refused, as is a part with huge or countless headers.
        self._parts += 1
        if self._parts > self.max_files + MAX_FIELDS:
            raise InvalidInput(f"at most {self.max_files + MAX_FIELDS} parts per request")
        self._disposition, self._current, self._field = b"", None, None
        self._header_bytes = self._header_count = 0

    def _header_bytes_add(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > HEADER_LIMIT:
            raise InvalidInput(f"a multipart part's headers exceed {HEADER_LIMIT} bytes")

    def _header_field_cb(self, data: bytes, start: int, end: int) -> None:
        self._header_bytes_add(end - start)
        self._header_field += data[start:end]

    def _header_value_cb(self, data: bytes, start: int, end: int) -> None:
        self._header_bytes_add(end - start)
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._header_count += 1
        if self._header_count > HEADERS_PER_PART:
            raise InvalidInput(f"a multipart part has more than {HEADERS_PER_PART} headers")
        if self._header_field.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_field, self._header_value = b"", b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in options:
            if name not in self.file_fields:
                raise InvalidInput(f"unexpected file field {name!r}; send files as 'file'")
            if len(self.files) >= self.max_files:
                raise InvalidInput(f"at most {self.max_files} files per request")
            filename = safe_filename(options[b"filename"].decode("utf-8", "replace"))
            self._current = self.store.stage(filename, self.max_file_bytes, in_memory=True,
                                             defer=True)
            self.files.append(self._current)
        else:
            if len(self.fields) >= MAX_FIELDS:
                raise InvalidInput("too many form fields")
            self._field = (name[:64], bytearray())

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._current is not None:
            self._current.write(memoryview(data)[start:end])  # hashed and encrypted, not copied
        elif self._field is not None:
            self._field[1].extend(data[start:end])
            if len(self._field[1]) > FIELD_LIMIT:
                raise InvalidInput(f"form field {self._field[0]!r} is too long")

    def _part_end(self) -> None:
        if self._current is not None:
            self._current.finish()
            self._current = None
        elif self._field is not None:
            self.fields[self._field[0]] = self._field[1].decode("utf-8", "replace")
            self._field = None

    def write(self, chunk: bytes) -> None:
        self._parser.write(chunk)

    @property
    def pending_write(self) -> bool:
        return any(staged.pending_write for staged in self.files)

    def write_pending(self) -> None:
        """Write the staged files' waiting ciphertext (blocking: call it from a thread)."""
        for staged in self.files:
            staged.write_pending()

    def finish(self) -> None:
        self._parser.finalize()
        if any(not f.finished for f in self.files):
            raise InvalidInput("the multipart body ended inside a file")

    def discard(self) -> None:
        for staged in self.files:
            staged.discard()


def boundary_of(request: Request) -> bytes:
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or not options.get(b"boundary"):
        raise InvalidInput("send files as multipart/form-data")
    return options[b"boundary"]


def _problem(exc: Exception) -> SecOpsError:
    """What the client is told of a failure while parsing or staging the body: our own
    problems as they are (a file store that cannot take it is ``Unavailable``, 503),
    anything else (a parser error on a broken body) as malformed, logged by type only
    (its text may quote the body)."""
    if isinstance(exc, SecOpsError):
        return exc
    log.warning("upload body rejected as malformed", extra={"error": type(exc).__name__})
    return InvalidInput("the multipart body is malformed")


async def receive_upload(request: Request, upload: MultipartUpload) -> MultipartUpload:
    """Stream the body into ``upload``; on failure discard it and raise the problem."""
    failure: SecOpsError | None = None
    received = 0
    try:
        async for chunk in request.stream():
            if failure is not None or not chunk:
                continue  # drain: the client gets the problem, not a reset connection
            try:
                # Parsed, hashed and encrypted here: handing every chunk to a thread cost
                # more than the work, and the two threads handed the GIL to and fro on
                # every hash update. What must be written waits for a batch.
                upload.write(chunk)
                received += len(chunk)
                if received >= WRITE_BATCH:
                    received = 0
                    if upload.pending_write:
                        await run_in_threadpool(upload.write_pending)
            except Exception as exc:
                failure = _problem(exc)
        if failure is None:
            try:
                upload.finish()  # what is still held is written when the files are committed
            except Exception as exc:
                failure = _problem(exc)
    except ClientDisconnect:
        upload.discard()
        raise InvalidInput("the upload was interrupted") from None
    except BaseException:
        upload.discard()
        raise
    if failure is not None:
        upload.discard()
        raise failure
    if not upload.files:
        raise InvalidInput("no file in the request (multipart field 'file')")
    return upload
