"""A zip reader that validates the archive's structure before inflating anything.

Python's ``zipfile`` guards (overlap detection, size checks) differ between patch
releases and have been bypassed, so this module parses the end-of-central-directory
record, the central directory and every local header itself and rejects, before any
decompression: more entries than allowed, duplicate names, entries whose byte ranges
overlap (the "better zip bomb" trick), local and central names that disagree, and
declared sizes or ratios beyond the limits. Inflation then runs through ``zlib``/``bz2``/
``lzma`` decompressor objects with an output cap, so a lying header can never make it
produce more than the declared size plus one byte.
"""

from __future__ import annotations

import bz2
import lzma
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

EOCD_SIG = b"PK\x05\x06"
EOCD64_LOCATOR_SIG = b"PK\x06\x07"
EOCD64_SIG = b"PK\x06\x06"
CENTRAL_SIG = b"PK\x01\x02"
LOCAL_SIG = b"PK\x03\x04"
STORED, DEFLATED, BZIP2, LZMA = 0, 8, 12, 14
AES_ENCRYPTED = 99


class ZipFormatError(Exception):
    """The bytes are not a well-formed zip archive."""


@dataclass(slots=True)
class ZipEntry:
    name: str
    flags: int
    method: int
    crc: int
    compressed_size: int
    uncompressed_size: int
    header_offset: int  # absolute offset of the local header in the data
    data_offset: int = 0  # absolute offset of the entry's compressed bytes
    external_attr: int = 0
    create_system: int = 0

    @property
    def encrypted(self) -> bool:
        return bool(self.flags & 0x1) or self.method == AES_ENCRYPTED

    @property
    def unix_mode(self) -> int:
        return (self.external_attr >> 16) & 0xFFFF if self.create_system == 3 else 0

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/")


@dataclass(slots=True)
class ZipDirectory:
    entries: list[ZipEntry]
    declared_count: int
    prefix_bytes: int  # bytes before the archive: > 0 for appended archives (polyglots)


def find_eocd(data: bytes) -> int:
    """Offset of the end-of-central-directory record, or -1."""
    start = max(0, len(data) - (22 + 0xFFFF))
    pos = data.rfind(EOCD_SIG, start)
    while pos >= 0:
        if pos + 22 <= len(data):
            (comment_len,) = struct.unpack_from("<H", data, pos + 20)
            if pos + 22 + comment_len <= len(data):
                return pos
        pos = data.rfind(EOCD_SIG, start, pos)
    return -1


def _decode_name(raw: bytes, flags: int) -> str:
    return raw.decode("utf-8" if flags & 0x800 else "cp437", errors="replace")


def read_directory(data: bytes, max_entries: int) -> ZipDirectory:
    """Parse and cross-check the central directory; raise ZipFormatError if broken.

    Only counts are read when the declared entry count is beyond ``max_entries``: the
    caller reports the limit without walking a directory built to exhaust memory.
    """
    eocd = find_eocd(data)
    if eocd < 0:
        raise ZipFormatError("no end of central directory record")
    _, _, _, count, cd_size, cd_offset, _ = struct.unpack_from("<HHHHIIH", data, eocd + 4)
    if 0xFFFF in (count,) or 0xFFFFFFFF in (cd_size, cd_offset):
        loc = eocd - 20
        if loc < 0 or data[loc : loc + 4] != EOCD64_LOCATOR_SIG:
            raise ZipFormatError("zip64 locator missing")
        (rec,) = struct.unpack_from("<Q", data, loc + 8)
        if rec + 56 > len(data) or data[rec : rec + 4] != EOCD64_SIG:
            raise ZipFormatError("zip64 end record missing")
        count, _, cd_size, cd_offset = struct.unpack_from("<QQQQ", data, rec + 24)
        cd_end = rec
    else:
        cd_end = eocd
    prefix = cd_end - cd_size - cd_offset
    if prefix < 0:
        raise ZipFormatError("central directory lies outside the data")
    if count > max_entries:
        return ZipDirectory([], count, prefix)
    entries: list[ZipEntry] = []
    pos = prefix + cd_offset
    for _ in range(count):
        if data[pos : pos + 4] != CENTRAL_SIG:
            raise ZipFormatError("central directory entry signature missing")
        (made_by, _, flags, method, _, _, crc, csize, usize, nlen, elen, clen, _, _, ext_attr,
         offset) = struct.unpack_from("<HHHHHHIIIHHHHHII", data, pos + 4)
        raw_name = data[pos + 46 : pos + 46 + nlen]
        extra = data[pos + 46 + nlen : pos + 46 + nlen + elen]
        usize, csize, offset = _zip64_sizes(extra, usize, csize, offset)
        entries.append(ZipEntry(_decode_name(raw_name, flags), flags, method, crc, csize, usize,
                                prefix + offset, 0, ext_attr, made_by >> 8))
        pos += 46 + nlen + elen + clen
    if pos > cd_end:
        raise ZipFormatError("central directory overruns its declared size")
    return ZipDirectory(entries, count, prefix)


def _zip64_sizes(extra: bytes, usize: int, csize: int, offset: int) -> tuple[int, int, int]:
    i = 0
    while i + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, i)
        if tag == 0x0001:
            fields = extra[i + 4 : i + 4 + size]
            j = 0
            values = []
            for original in (usize, csize, offset):
                if original == 0xFFFFFFFF and j + 8 <= len(fields):
                    values.append(struct.unpack_from("<Q", fields, j)[0])
                    j += 8
                else:
                    values.append(original)
            return values[0], values[1], values[2]
        i += 4 + size
    return usize, csize, offset


def check_layout(data: bytes, directory: ZipDirectory) -> list[str]:
    """Locate each entry's data through its local header; describe structural problems.

    Returns human-readable problems (overlaps, duplicates, name disagreements); entries
    whose local header is unreadable get ``data_offset = -1`` and are skipped by callers.
    """
    problems: list[str] = []
    seen: set[str] = set()
    for entry in directory.entries:
        if entry.name in seen:
            problems.append(f"duplicate entry name {entry.name!r}")
        seen.add(entry.name)
        h = entry.header_offset
        if data[h : h + 4] != LOCAL_SIG or h + 30 > len(data):
            problems.append(f"local header of {entry.name!r} missing")
            entry.data_offset = -1
            continue
        nlen, elen = struct.unpack_from("<HH", data, h + 26)
        local_name = _decode_name(data[h + 30 : h + 30 + nlen], entry.flags)
        if local_name != entry.name:
            problems.append(f"local name {local_name!r} differs from central name {entry.name!r}")
        entry.data_offset = h + 30 + nlen + elen
        if entry.data_offset + entry.compressed_size > len(data):
            problems.append(f"data of {entry.name!r} runs past the end of the archive")
            entry.data_offset = -1
    spans = sorted(
        (e.header_offset, e.data_offset + e.compressed_size, e.name)
        for e in directory.entries
        if e.data_offset >= 0
    )
    for (_, end, name), (next_start, _, next_name) in zip(spans, spans[1:], strict=False):
        if next_start < end:
            problems.append(f"entries {name!r} and {next_name!r} overlap")
    return problems


@dataclass(slots=True)
class Inflated:
    data: bytes
    exceeded: bool  # produced more than the cap allowed (stopped there)
    ratio_exceeded: bool
    error: str | None = None
    members: int = 1  # gzip members decompressed (a gzip file may hold several)
    members_exceeded: bool = False  # stopped at ``max_members``


FIRST_FEED = 64  # input fed to a new gzip member first; doubled while the member goes on


def inflate(
    compressed: bytes | memoryview,
    make: Callable[[], zlib._Decompress | bz2.BZ2Decompressor | lzma.LZMADecompressor],
    cap: int,
    max_ratio: float,
    ratio_min_bytes: int,
    max_members: int = 1 << 62,
) -> Inflated:
    """Decompress with an output cap and a running compression-ratio check.

    Output is requested in 1 MiB slices with ``max_length`` so no decompressor call can
    return more than that; the loop stops one byte past ``cap`` (to prove the overrun)
    or when the ratio against the whole compressed input passes ``max_ratio``. The
    output is joined once at the end.

    A gzip file may be many members back to back. Each member starts with a small input
    slice that doubles while the member goes on (up to 256 KiB), and the next member is
    found by its offset, never by copying the rest of the input: what zlib copies at a
    member's end (``unused_data``) is at most about the member's own size, so a file of a
    million empty members costs linear time. Members past ``max_members`` are not read.
    """
    slice_size, max_feed = 1 << 20, 256 * 1024
    view = memoryview(compressed)
    pieces: list[bytes] = []
    produced = 0
    in_len = max(len(view), 1)
    decomp = make()
    members = 1

    def result(exceeded: bool = False, ratio: bool = False, error: str | None = None,
               too_many: bool = False) -> Inflated:
        data = b"".join(pieces)
        return Inflated(data[:cap] if exceeded else data, exceeded, ratio, error, members,
                        too_many)

    def take(piece: bytes) -> Inflated | None:
        """Keep ``piece``; the result to stop with if a limit is now passed."""
        nonlocal produced
        pieces.append(piece)
        produced += len(piece)
        if produced > cap:
            return result(exceeded=True)
        if produced > ratio_min_bytes and produced > max_ratio * in_len:
            return result(ratio=True)
        return None

    try:
        if isinstance(decomp, bz2.BZ2Decompressor | lzma.LZMADecompressor):
            # These keep unconsumed input internally: feed it all once, then drain.
            pending: bytes | memoryview = view
            while True:
                piece = decomp.decompress(pending, min(slice_size, cap + 1 - produced))
                pending = b""
                if (stop := take(piece)) is not None:
                    return stop
                if decomp.eof or (decomp.needs_input and not piece):
                    return result()
        zdecomp = decomp
        tail: bytes | memoryview = b""
        fed = 0
        feed = FIRST_FEED
        while True:
            if not tail and fed < len(view):
                tail = view[fed : fed + feed]
                fed = min(fed + feed, len(view))
                feed = min(feed * 2, max_feed)
            offered = len(tail)
            piece = zdecomp.decompress(tail, min(slice_size, cap + 1 - produced))
            tail = zdecomp.unconsumed_tail
            if not piece and offered and len(tail) == offered:
                return result(error="the decompressor made no progress")
            if (stop := take(piece)) is not None:
                return stop
            if zdecomp.eof:
                start = fed - len(tail) - len(zdecomp.unused_data)
                if view[start : start + 2] != b"\x1f\x8b":
                    return result()
                # gzip allows several members back to back; continue with the next.
                if members >= max_members:
                    return result(too_many=True)
                members += 1
                zdecomp = make()  # type: ignore[assignment]
                fed, tail, feed = start, b"", FIRST_FEED
                continue
            if not piece and not tail and fed >= len(view):
                return result()  # input ended before the stream did
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError) as exc:
        return result(error=str(exc))


def zip_decompressor(entry: ZipEntry, data: bytes) -> tuple[
    Callable[[], zlib._Decompress | bz2.BZ2Decompressor | lzma.LZMADecompressor] | None, int
]:
    """The decompressor factory for an entry's method and where its stream starts."""
    start = entry.data_offset
    if entry.method == DEFLATED:
        return (lambda: zlib.decompressobj(-15)), start
    if entry.method == BZIP2:
        return bz2.BZ2Decompressor, start
    if entry.method == LZMA and entry.compressed_size >= 4:
        (psize,) = struct.unpack_from("<H", data, start + 2)
        props = data[start + 4 : start + 4 + psize]
        filt = lzma._decode_filter_properties(lzma.FILTER_LZMA1, props)  # type: ignore[attr-defined]
        return (lambda: lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[filt])), start + 4 + psize
    return None, start
