"""Safe expansion of zip, tar (plain, gz, bz2, xz), gzip/bzip2/xz streams, 7z, ar
(Debian packages, static libraries) and cpio (newc, crc and odc).

Members come out as ``(name, bytes)`` pairs held in memory, never as files: no path
taken from an archive is ever created, so ``../`` names, absolute paths and links are
only findings. Every byte produced is charged to one :class:`Budget` per top-level
file (total bytes and entry count across all nesting levels), and each decompressor
is capped at the smaller of the member's declared size and what the budget has left,
so a bomb stops at the limit with bounded memory and no disk use at all.

:class:`Expander` reads zip, tar and the compressed streams here; ar and cpio come from
:mod:`secops.scanning.arcpio`, 7z from :mod:`secops.scanning.sevenzip`, and which format
a file is from :mod:`secops.scanning.containers`.
"""

from __future__ import annotations

import bz2
import io
import lzma
import stat
import struct
import tarfile
import zlib
from collections.abc import Callable, Iterator

from secops.scanning.arcpio import StoredArchiveReader
from secops.scanning.containers import AR, BZIP2, CPIO, GZIP, SEVENZIP, TAR, XZ, ZIP, archive_kind
from secops.scanning.expansion import Budget
from secops.scanning.links import HARDLINK, SYMLINK, ArchiveLinks
from secops.scanning.models import Severity
from secops.scanning.sevenzip import SevenZipReader
from secops.scanning.ziparchive import (
    STORED,
    ZipEntry,
    ZipFormatError,
    check_layout,
    inflate,
    read_directory,
    zip_decompressor,
)

__all__ = ["Budget", "Expander"]


class Expander(StoredArchiveReader, SevenZipReader):
    """Yields the members of one container, recording findings as it goes."""

    def members(self, kind: str, data: bytes, location: str) -> Iterator[tuple[str, bytes]]:
        if kind == ZIP:
            yield from self._zip(data, location)
        elif kind == TAR:
            yield from self._tar(data, location)
        elif kind == SEVENZIP:
            yield from self._sevenzip(data, location)
        elif kind == AR:
            yield from self._ar(data, location)
        elif kind == CPIO:
            yield from self._cpio(data, location)
        else:
            yield from self._stream(kind, data, location)

    def _zip(self, data: bytes, location: str) -> Iterator[tuple[str, bytes]]:
        cfg = self.config
        try:
            directory = read_directory(data, cfg.max_entries)
        except (ZipFormatError, ValueError, IndexError, struct.error) as exc:
            self._add("archive.corrupt", Severity.LOW, f"zip directory unreadable: {exc}",
                      location)
            return
        if directory.declared_count > cfg.max_entries:
            self._limit("archive.limit.entries",
                        f"zip declares {directory.declared_count} entries", location)
            return
        problems = check_layout(data, directory)
        for problem in problems:
            self._add("archive.zip.malformed", Severity.HIGH,
                      f"zip structure is unsafe: {problem}", location)
        if any("overlap" in problem for problem in problems):
            return  # overlapping entries are a bomb construction; inflate nothing
        declared_total = sum(e.uncompressed_size for e in directory.entries)
        if declared_total > self.budget.bytes_left:
            self._limit("archive.limit.total_bytes",
                        f"zip declares {declared_total} bytes of content", location)
            return
        with self._links() as links:
            yield from self._zip_entries(data, directory.entries, location, links)

    def _zip_entries(self, data: bytes, entries: list[ZipEntry], location: str,
                     links: ArchiveLinks) -> Iterator[tuple[str, bytes]]:
        for entry in entries:
            # Duplicate names are reported above, and each copy is still scanned: an
            # extractor may keep either one.
            member_loc = self._enter(entry.name, location, links)
            if member_loc is None:
                return
            mode = entry.unix_mode
            if stat.S_ISLNK(mode):
                # The target is the member's content, not read: the link stays medium.
                links.link(entry.name, None, SYMLINK, member_loc)
                continue
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
                self._add("archive.device", Severity.MEDIUM, "member is a device or FIFO",
                          member_loc)
                continue
            if entry.is_dir or entry.data_offset < 0:
                continue
            if entry.encrypted:
                self._add("archive.encrypted", Severity.MEDIUM,
                          "member is encrypted and cannot be scanned", member_loc)
                continue
            content = self._zip_member(data, entry, member_loc)
            if content is not None:
                yield entry.name, content

    def _zip_member(self, data: bytes, entry: ZipEntry, member_loc: str) -> bytes | None:
        cfg = self.config
        csize, usize = entry.compressed_size, entry.uncompressed_size
        if usize > cfg.ratio_min_bytes and usize > cfg.max_ratio * max(csize, 1):
            self._add("archive.bomb", Severity.HIGH,
                      f"declared compression ratio {usize // max(csize, 1)}:1 exceeds "
                      f"{cfg.max_ratio:g}:1; not expanded", member_loc)
            return None
        start = entry.data_offset
        if entry.method == STORED:
            content = data[start : start + min(csize, usize + 1)]
            if len(content) > usize:
                content = content[:usize]
                self._add("archive.size_mismatch", Severity.HIGH,
                          "stored member is larger than declared", member_loc)
        else:
            factory, stream_start = zip_decompressor(entry, data)
            if factory is None:
                self._add("archive.unsupported", Severity.MEDIUM,
                          f"compression method {entry.method} cannot be scanned", member_loc)
                return None
            view = memoryview(data)[stream_start : start + csize]
            result = inflate(view, factory, min(usize, max(self.budget.bytes_left, 0)),
                             cfg.max_ratio, cfg.ratio_min_bytes)
            content = result.data
            if result.error:
                self._add("archive.corrupt", Severity.LOW,
                          f"member does not decompress: {result.error}", member_loc)
            if result.exceeded and usize <= self.budget.bytes_left:
                self._add("archive.size_mismatch", Severity.HIGH,
                          f"member produces more than its declared {usize} bytes", member_loc)
            elif result.ratio_exceeded:
                self._add("archive.bomb", Severity.HIGH,
                          f"compression ratio exceeds {cfg.max_ratio:g}:1", member_loc)
            if not result.exceeded and not result.error and len(content) != usize:
                self._add("archive.size_mismatch", Severity.MEDIUM,
                          f"member produced {len(content)} bytes, declared {usize}", member_loc)
        if not self._charge(len(content), member_loc):
            return None
        if len(content) == usize and zlib.crc32(content) != entry.crc:
            self._add("archive.crc_mismatch", Severity.MEDIUM, "member fails its CRC check",
                      member_loc)
        return content

    def _stream(self, kind: str, data: bytes, location: str) -> Iterator[tuple[str, bytes]]:
        """gzip, bzip2 or xz: one member; a tar inside is expanded in the same step."""
        cfg = self.config
        factories: dict[str, Callable[[], zlib._Decompress | bz2.BZ2Decompressor |
                                      lzma.LZMADecompressor]] = {
            GZIP: lambda: zlib.decompressobj(47),
            BZIP2: bz2.BZ2Decompressor,
            XZ: lambda: lzma.LZMADecompressor(lzma.FORMAT_AUTO),
        }
        if kind == GZIP and len(data) >= 18:
            declared = int.from_bytes(data[-4:], "little")  # ISIZE, modulo 2**32
            if declared > cfg.ratio_min_bytes and declared > cfg.max_ratio * len(data):
                self._add("archive.bomb", Severity.HIGH,
                          f"gzip declares {declared} bytes from {len(data)}; not expanded",
                          location)
                return
        if not self._take_entry(location):
            return
        # every gzip member after the first is one more entry of the budget
        result = inflate(data, factories[kind], max(self.budget.bytes_left, 0),
                         cfg.max_ratio, cfg.ratio_min_bytes,
                         max_members=self.budget.entries_left + 1)
        self.budget.entries_left -= result.members - 1
        if result.members_exceeded:
            self._limit("archive.limit.entries",
                        f"gzip holds more than {result.members} members", location)
            return
        if result.error:
            self._add("archive.corrupt", Severity.LOW,
                      f"{kind} stream does not decompress: {result.error}", location)
        if result.ratio_exceeded:
            self._add("archive.bomb", Severity.HIGH,
                      f"compression ratio exceeds {cfg.max_ratio:g}:1; stopped", location)
            return
        if result.exceeded:
            self._charge(len(result.data) + 1, location)
            return
        if not self._charge(len(result.data), location):
            return
        inner = result.data
        if archive_kind(inner) == TAR:
            yield from self._tar(inner, location)
            return
        yield _inner_name(location), inner

    def _tar(self, data: bytes, location: str) -> Iterator[tuple[str, bytes]]:
        try:
            archive = tarfile.open(fileobj=io.BytesIO(data), mode="r:")
        except (tarfile.TarError, ValueError, OSError) as exc:
            self._add("archive.corrupt", Severity.LOW, f"tar unreadable: {exc}", location)
            return
        with archive, self._links() as links:
            while True:
                try:
                    member = archive.next()
                except (tarfile.TarError, ValueError, OSError) as exc:
                    self._add("archive.corrupt", Severity.LOW, f"tar header unreadable: {exc}",
                              location)
                    return
                if member is None:
                    links.complete = True
                    return
                member_loc = self._enter(member.name, location, links)
                if member_loc is None:
                    return
                if member.issym() or member.islnk():
                    links.link(member.name, member.linkname,
                               SYMLINK if member.issym() else HARDLINK, member_loc)
                    continue
                if member.ischr() or member.isblk() or member.isfifo():
                    self._add("archive.device", Severity.MEDIUM, "member is a device or FIFO",
                              member_loc)
                    continue
                if not member.isfile():
                    continue
                if member.size > self.budget.bytes_left:
                    self._charge(member.size, member_loc)
                    return
                stream = archive.extractfile(member)
                content = stream.read(member.size) if stream is not None else b""
                self._charge(len(content), member_loc)
                yield member.name, content


def _inner_name(location: str) -> str:
    last = location.rsplit("!", 1)[-1].rsplit("/", 1)[-1]
    for suffix, replacement in ((".tgz", ".tar"), (".gz", ""), (".bz2", ""), (".xz", "")):
        if last.lower().endswith(suffix):
            return last[: -len(suffix)] + replacement
    return last + ".out"

