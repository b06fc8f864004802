"""Reading only what is new in log files from one run to the next, across rotation.

A file is known by its *fingerprint*: a hash of its first line (read decompressed for a
``.gz``). The checkpoint of a fingerprint is how many bytes of that content were read.
This follows a log through every way it is rotated:

* appended to: same fingerprint, read from the checkpoint on;
* renamed (``auth.log`` -> ``auth.log.1``) and a new file started: the renamed file
  keeps its fingerprint, so its rest is read from the checkpoint and the new file from
  its start;
* compressed after rotation (``auth.log.2.gz``): same fingerprint, the decompressed
  stream is skipped up to the checkpoint;
* truncated in place (``copytruncate``): the file now starts with other content, so it
  has another fingerprint and is read from its start; if it was cut below the
  checkpoint and rewritten with a line identical to the old first line, the size going
  below the checkpoint still shows the truncation.

A file whose first line is not complete yet is left for a later run. Only complete lines
are read (a line still being written stays for the next run), and a checkpoint is
advanced only as far as the lines handed out, so nothing is counted twice and nothing is
lost when a run stops early. :class:`Checkpoints` is a small protocol: a dict in tests
and the local engine, a database table on the platform.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from secops.anomaly.reading import GZIP_MAGIC

FIRST_LINE_LIMIT = 4096


class Checkpoints(Protocol):
    def get(self, fingerprint: str) -> int | None: ...

    def put(self, fingerprint: str, offset: int, path: str) -> None: ...


class DictCheckpoints:
    """Checkpoints in a mapping (``{fingerprint: offset}``)."""

    def __init__(self, data: MutableMapping[str, int] | None = None) -> None:
        self.data: MutableMapping[str, int] = data if data is not None else {}

    def get(self, fingerprint: str) -> int | None:
        return self.data.get(fingerprint)

    def put(self, fingerprint: str, offset: int, path: str) -> None:
        self.data[fingerprint] = offset


def _open(path: Path) -> tuple[IO[bytes], bool]:
    raw = path.open("rb")
    head = raw.read(2)
    raw.seek(0)
    if head == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=raw), True   # type: ignore[return-value]
    return raw, False


def fingerprint(path: Path) -> str | None:
    """The hash of the file's first line; None while it has no complete first line."""
    stream, _ = _open(path)
    with stream:
        first = stream.readline(FIRST_LINE_LIMIT)
    if not first.endswith(b"\n") and len(first) < FIRST_LINE_LIMIT:
        return None
    return hashlib.sha256(first).hexdigest()[:32]


@dataclass
class TailedLine:
    text: str
    path: Path
    fingerprint: str
    end: int   # offset (bytes of content) just past this line


def new_lines(paths: list[Path], checkpoints: Checkpoints) -> Iterator[TailedLine]:
    """Complete lines not read before, file by file (oldest rotation first).

    The caller commits ``checkpoints.put(line.fingerprint, line.end, ...)`` for the last
    line it has processed of each file (:class:`Cursor` does it).
    """
    for path in sorted(paths, key=_age, reverse=True):
        try:
            fp = fingerprint(path)
        except (OSError, EOFError, gzip.BadGzipFile):
            continue
        if fp is None:
            continue
        start = checkpoints.get(fp) or 0
        stream, compressed = _open(path)
        with stream:
            if not compressed:
                size = os.fstat(stream.fileno()).st_size
                if size < start:   # truncated below what was read: a new file
                    start = 0
                stream.seek(start)
            else:
                _skip(stream, start)
            offset = start
            for raw in stream:
                if not raw.endswith(b"\n"):
                    break   # still being written
                offset += len(raw)
                yield TailedLine(raw.decode("utf-8", "replace").rstrip("\r\n"), path, fp, offset)


def _skip(stream: IO[bytes], count: int) -> None:
    while count > 0:
        chunk = stream.read(min(count, 1 << 20))
        if not chunk:
            return
        count -= len(chunk)


def _age(path: Path) -> tuple[float, str]:
    """Older files first: by modification time, then ``.2.gz`` before ``.1`` before the file."""
    try:
        mtime = path.stat().st_mtime
    except OSError:
        mtime = 0.0
    return (-mtime, path.name)


class Cursor:
    """Remembers the last line handed out per file and commits their checkpoints."""

    def __init__(self, checkpoints: Checkpoints) -> None:
        self.checkpoints = checkpoints
        self._pending: dict[str, tuple[int, str]] = {}

    def advance(self, line: TailedLine) -> None:
        self._pending[line.fingerprint] = (line.end, str(line.path))

    def commit(self) -> None:
        for fp, (offset, path) in self._pending.items():
            self.checkpoints.put(fp, offset, path)
        self._pending.clear()
