"""Reading log files: compressed or plain, format detected per file, merged by time.

Files are read a block of lines at a time (constant memory); a ``.gz`` file (recognised
by its magic bytes) is decompressed on the fly. The reference time for syslog years is
the file's modification time, since a log's last line was written shortly before it.
Several files are merged into one stream ordered by time (each file is assumed roughly
in order), so windows see the events of every file together.
"""

from __future__ import annotations

import gzip
import io
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast

from secops.anomaly.events import Item
from secops.anomaly.parsers import DETECT_LINES, LineReader, ParseStats, detect_format, make_parser

GZIP_MAGIC = b"\x1f\x8b"


def open_text(path: Path) -> IO[str]:
    raw = path.open("rb")
    head = raw.peek(2)[:2] if isinstance(raw, io.BufferedReader) else b""
    stream: IO[bytes] = cast(IO[bytes], gzip.GzipFile(fileobj=raw) if head == GZIP_MAGIC else raw)
    return io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="")


BLOCK = 1 << 20   # characters read at a time


def blocks(fh: IO[str], block: int = BLOCK) -> Iterator[list[str]]:
    """The lines of ``fh`` (end of line kept off), a list per block read: splitting a block
    costs far less than the stream's line-by-line iteration. Line ends are those of a stream
    opened with ``newline=""``: ``\\n``, ``\\r\\n`` and a lone ``\\r``."""
    rest = ""
    while True:
        data = fh.read(block)
        if not data:
            break
        data = rest + data
        cut = data.rfind("\n")
        if cut < 0:
            rest = data
            continue
        rest = data[cut + 1:]
        if "\r" in data:
            yield [ln.rstrip("\r\n") for ln in io.StringIO(data[:cut + 1], newline="")]
        else:
            yield data[:cut].split("\n")
    if rest:
        yield [ln.rstrip("\r\n") for ln in io.StringIO(rest, newline="")]


def lines(fh: IO[str], block: int = BLOCK) -> Iterator[str]:
    """The lines of ``fh`` (end of line kept off), read a block at a time."""
    for found in blocks(fh, block):
        yield from found


@dataclass
class LogFile:
    path: Path
    format: str
    stats: ParseStats = field(default_factory=ParseStats)


def log_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """The files named, directories walked recursively in sorted order."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file())
        else:
            yield path


def open_log(path: Path, *, fmt: str | None = None,
             json_fields: Mapping[str, str] | None = None,
             light: Callable[[str, str], Any] | None = None,
             ) -> tuple[LogFile, Iterator[Item]]:
    """Detect the file's format (FormatError if none fits) and iterate its events. With
    ``light`` (a detector's ``light_plan``), the requests of an access log that it gives a
    plan for come as light tuples (see :meth:`LineReader.light`), for ``feed_all`` of that
    same detector only (a tuple carries its steps)."""
    log, found = open_log_blocks(path, fmt=fmt, json_fields=json_fields, light=light)
    return log, (item for block in found for item in block)


def open_log_blocks(path: Path, *, fmt: str | None = None,
                    json_fields: Mapping[str, str] | None = None,
                    light: Callable[[str, str], Any] | None = None,
                    ) -> tuple[LogFile, Iterator[list[Item]]]:
    """:func:`open_log`, its events a list per block of the file read."""
    reference = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    if fmt is None:
        with open_text(path) as fh:
            head = [line.rstrip("\r\n") for _, line in zip(range(DETECT_LINES * 4), fh, strict=False)]
        fmt = detect_format(head, reference=reference, json_fields=json_fields)
    log = LogFile(path, fmt)
    reader = LineReader(make_parser(fmt, reference=reference, json_fields=json_fields),
                        origin=path.name, stats=log.stats)

    def events() -> Iterator[list[Item]]:
        with open_text(path) as fh:
            if light is not None and fmt == "combined":
                for found in blocks(fh):
                    yield reader.light(found, light)
                return
            if fmt == "syslog":
                for found in blocks(fh):
                    yield cast(list[Item], reader.syslog(found))
                return
            if fmt == "jsonl":
                for found in blocks(fh):
                    yield cast(list[Item], reader.json_lines(found))
                return
            for found in blocks(fh):
                yield list(reader.events(found))

    return log, events()


def merged(streams: Iterable[Iterable[Item]]) -> Iterator[Item]:
    """Events of several streams in time order (a stable k-way merge). Light tuples of
    :meth:`LineReader.light` (time first) merge with the events. The order is
    ``heapq.merge``'s keyed by time, ties included (see :func:`merged_blocks`, which
    this reads a list of each stream at a time through)."""
    for block in merged_blocks(_lists(stream) for stream in streams):
        yield from block


def _lists(stream: Iterable[Item], size: int = 1024) -> Iterator[list[Item]]:
    """``stream`` a list of up to ``size`` items at a time."""
    items = iter(stream)
    while found := list(itertools.islice(items, size)):
        yield found


def merged_blocks(streams: Iterable[Iterator[list[Item]]]) -> Iterator[list[Item]]:
    """The items of several streams that come a list at a time, in time order, a list at
    a time: :func:`heapq.merge`'s order keyed by time (ties and streams out of order
    included: the next item is always the one with the least (time, stream number) among
    the streams' next items), with no generator step and no heap operation per item. The stream whose
    next item is least gives items while they stay below the next item of every other,
    up to the end of its list at the most."""
    heads: list[list[Any]] = []   # per stream: [time, number, block, index, next block]
    for order, stream in enumerate(streams):
        step = iter(stream).__next__
        first = _filled(step)
        if first is not None:
            item = first[0]
            heads.append([item[0] if isinstance(item, tuple) else item.ts, order, first, 0, step])
    while len(heads) > 1:
        best = heads[0]
        for head in heads:   # the least (time, number); then the least of the others
            if head[0] < best[0] or (head[0] == best[0] and head[1] < best[1]):
                best = head
        bound: list[Any] | None = None
        for head in heads:
            if head is not best and (bound is None or head[0] < bound[0]
                                     or (head[0] == bound[0] and head[1] < bound[1])):
                bound = head
        assert bound is not None
        limit, before = bound[0], best[1] < bound[1]   # (on a tie, the lower number first)
        block: list[Item] = best[2]
        start = index = best[3]
        size = len(block)
        while True:
            index += 1
            if index == size:   # the end of the list: hand out the run so far (a list
                out = block[start:]   # stays within a block of a file, however long the run)
                following = _filled(best[4])
                if following is None:
                    heads.remove(best)
                else:
                    item = following[0]
                    best[0] = item[0] if isinstance(item, tuple) else item.ts
                    best[2], best[3] = following, 0
                break
            item = block[index]
            ts = item[0] if isinstance(item, tuple) else item.ts
            if ts < limit or (before and ts == limit):
                continue
            best[0], best[3] = ts, index
            out = block[start:index]
            break
        yield out
    if heads:
        last = heads[0]
        yield last[2][last[3]:]
        while (following := _filled(last[4])) is not None:
            yield following


def _filled(step: Callable[[], list[Item]]) -> list[Item] | None:
    """The next list of a stream with an item in it, or None at its end."""
    try:
        while not (block := step()):
            pass
    except StopIteration:
        return None
    return block
