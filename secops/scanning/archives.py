"""Safe expansion of zip, tar (plain, gz, bz2, xz), gzip/bzip2/xz streams, 7z, ar
(Debian packages, static libraries) and cpio (newc, crc and odc).

Members come out as ``(name, bytes)`` pairs held in memory, never as files: no path
taken from an archive is ever created, so ``../`` names, absolute paths and links are
only findings. Every byte produced is charged to one :class:`Budget` per top-level
file (total bytes and entry count across all nesting levels), and each decompressor
is capped at the smaller of the member's declared size and what the budget has left,
so a bomb stops at the limit with bounded memory and no disk use at all.

Containers that are recognised but not expanded (RAR, cab, disc images...) are named by
:func:`unexpanded_container`, so that the engine reports them instead of calling them
clean.
"""

from __future__ import annotations

import bz2
import io
import lzma
import re
import stat
import struct
import tarfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

import py7zr
import py7zr.exceptions
import py7zr.io

from secops.scanning.links import HARDLINK, SYMLINK, ArchiveLinks
from secops.scanning.models import Finding, ScanConfig, Severity
from secops.scanning.ziparchive import (
    STORED,
    ZipEntry,
    ZipFormatError,
    check_layout,
    inflate,
    read_directory,
    zip_decompressor,
)

ZIP, TAR, GZIP, BZIP2, XZ, SEVENZIP = "zip", "tar", "gzip", "bzip2", "xz", "7z"
AR, CPIO = "ar", "cpio"


class BudgetExhausted(Exception):
    """Raised inside a decompressor callback to abort a 7z extraction at the cap."""


@dataclass(slots=True)
class Budget:
    """What expansion may still produce for one top-level file."""

    bytes_left: int
    entries_left: int
    exhausted: bool = False


def archive_kind(data: bytes) -> str | None:
    """Recognise a container by its own signature (libmagic is not consulted)."""
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return ZIP
    if data[:2] == b"\x1f\x8b":
        return GZIP
    if data[:3] == b"BZh":
        return BZIP2
    if data[:6] == b"\xfd7zXZ\x00":
        return XZ
    if data[:6] == b"7z\xbc\xaf\x27\x1c":
        return SEVENZIP
    if data[257:262] == b"ustar" or (len(data) >= 1024 and _is_v7_tar(data)):
        return TAR
    if data.startswith(_AR_MAGIC):
        return AR
    if _cpio_format(data) is not None:
        return CPIO
    return None


# Containers recognised by their own signatures but not expanded. Expanding them needs
# an external unpacker (unrar, cabextract...) or a parser of our own with the limit
# discipline above, so their members get no type, hash, nested-archive or per-member
# YARA checks; saying nothing would pass them as clean. Compressed ones hide their
# members even from YARA (``archive.unsupported``, medium: suspicious). Disc and disk
# images store their files as they are, so YARA read those as part of the whole image,
# but an image is a common way to carry an executable or an archive past a mail filter,
# and neither is looked at on its own (medium too).
_UNEXPANDED_AT_START: tuple[tuple[bytes, str], ...] = (
    (b"Rar!\x1a\x07\x00", "RAR"),
    (b"Rar!\x1a\x07\x01\x00", "RAR 5"),
    (b"MSCF\x00\x00\x00\x00", "Microsoft Cabinet"),
    (b"\x28\xb5\x2f\xfd", "Zstandard"),
    (b"\x04\x22\x4d\x18", "LZ4"),
    (b"LZIP\x01", "lzip"),
    (b"MSWIM\x00\x00\x00", "Windows Imaging (WIM)"),
    (b"xar!\x00\x1c", "xar"),
    (b"\xed\xab\xee\xdb", "RPM package"),
)
_DISC_IMAGE_MARKERS = (b"CD001", b"BEA01")  # ISO 9660 / UDF volume descriptors at 32769


class Unexpanded(NamedTuple):
    """A container that is recognised and not expanded (see the comment above)."""

    name: str
    members_stored: bool  # its members' bytes are in it as they are: YARA read them


def _unexpanded_compressed(data: bytes) -> str | None:
    for signature, name in _UNEXPANDED_AT_START:
        if data.startswith(signature):
            return name
    if data[7:14] == b"**ACE**":
        return "ACE"
    if data[2:5] in (b"-lh", b"-lz") and data[6:7] == b"-":
        return "LHA"
    if data[:2] == b"\x60\xea" and 0 < int.from_bytes(data[2:4], "little") <= 2600 \
            and data[10:11] == b"\x02":
        return "ARJ"
    if data[:2] == b"\x1f\x9d" and len(data) > 2 and 9 <= data[2] & 0x1F <= 16:
        return "Unix compress"
    if data[:4] == b"hsqs" and data[28:30] == b"\x04\x00":
        return "SquashFS image"
    if len(data) >= 512 and data[-512:-508] == b"koly":
        return "Apple disk image"
    return None


def _unexpanded_image(data: bytes) -> str | None:
    # a dynamic VHD opens with a copy of its footer; a fixed one has the footer only
    if data.startswith(b"conectix") or (len(data) >= 512 and data[-512:-504] == b"conectix"):
        return "VHD disk image"
    if data.startswith(b"vhdxfile"):
        return "VHDX disk image"
    if data[32769:32774] in _DISC_IMAGE_MARKERS:
        return "ISO 9660/UDF disc image"
    return None


def unexpanded_container(data: bytes) -> Unexpanded | None:
    """A container format this engine recognises but does not expand; ``None`` for
    anything else."""
    if (name := _unexpanded_compressed(data)) is not None:
        return Unexpanded(name, members_stored=False)
    if (name := _unexpanded_image(data)) is not None:
        return Unexpanded(name, members_stored=True)
    return None


def unexpanded_finding(data: bytes, location: str | None) -> Finding | None:
    """``archive.unsupported`` for a container this engine does not expand."""
    found = unexpanded_container(data)
    if found is None:
        return None
    hidden = ("its members were not expanded and were checked only as part of the whole "
              "file" if found.members_stored else
              "this format is not expanded, so its contents were not scanned")
    return Finding("archive.unsupported", Severity.MEDIUM, f"{found.name} archive: {hidden}",
                   location)


def _is_v7_tar(data: bytes) -> bool:
    """Pre-POSIX tar has no magic: accept a first header whose checksum adds up."""
    field = data[148:156].strip(b" \0")
    if not field or not all(48 <= c <= 55 for c in field):
        return False
    header = data[:148] + b" " * 8 + data[156:512]
    return sum(header) == int(field, 8)


_AR_MAGIC = b"!<arch>\n"
# ar's index members (GNU, 64-bit GNU, BSD): symbol tables for the linker, not content
_AR_INDEXES = frozenset({"/", "/SYM64/", "__.SYMDEF", "__.SYMDEF SORTED"})
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
_OCTAL_DIGITS = frozenset(b"01234567")
_NOT_ZERO = re.compile(rb"[^\0]")


class _CpioFormat(NamedTuple):
    header: int  # bytes of the fixed header
    fields: tuple[tuple[int, int], ...]  # (offset, width) of mode, size, namesize
    base: int  # the fields' number base
    align: int  # header+name and data are padded to this


# newc and crc: 13 fields of 8 hex digits; odc: 6-digit and 11-digit octal fields.
_NEWC = _CpioFormat(110, ((14, 8), (54, 8), (94, 8)), 16, 4)
_ODC = _CpioFormat(76, ((18, 6), (65, 11), (59, 6)), 8, 1)
CPIO_TRAILER = "TRAILER!!!"


def _cpio_format(data: bytes, offset: int = 0) -> _CpioFormat | None:
    """cpio's magic is six digits, so the whole header must be digits too (a CSV may
    open with "070701")."""
    magic = data[offset : offset + 6]
    if magic in (b"070701", b"070702"):
        fmt, digits = _NEWC, _HEX_DIGITS
    elif magic == b"070707":
        fmt, digits = _ODC, _OCTAL_DIGITS
    else:
        return None
    header = data[offset + 6 : offset + fmt.header]
    if len(header) < fmt.header - 6 or not digits.issuperset(header):
        return None
    return fmt


def _pad(n: int, align: int) -> int:
    return -n % align


def name_findings(name: str, location: str) -> list[Finding]:
    """Path-safety findings for a member name; the name is never used as a path."""
    findings = []
    normal = name.replace("\\", "/")
    if normal.startswith("/") or (len(normal) > 1 and normal[1] == ":" and normal[0].isalpha()):
        findings.append(Finding("archive.absolute_path", Severity.HIGH,
                                f"member has an absolute path: {name!r}", location))
    if ".." in normal.split("/"):
        findings.append(Finding("archive.path_traversal", Severity.HIGH,
                                f"member name escapes the extraction directory: {name!r}",
                                location))
    if any(ord(c) < 32 for c in name):
        findings.append(Finding("archive.control_characters", Severity.LOW,
                                f"member name contains control characters: {name!r}", location))
    return findings


class Expander:
    """Yields the members of one container, recording findings as it goes."""

    def __init__(self, config: ScanConfig, budget: Budget, findings: list[Finding]) -> None:
        self.config = config
        self.budget = budget
        self.findings = findings

    def _add(self, fid: str, severity: Severity, text: str, location: str) -> None:
        self.findings.append(Finding(fid, severity, text, location))

    def _enter(self, name: str, location: str, links: ArchiveLinks | None = None) -> str | None:
        """The member's location, once it is counted as an entry, its name is checked and
        recorded in ``links``; ``None`` when the budget is spent (expansion stops)."""
        member_loc = f"{location}!{name}"
        if self.budget.exhausted or not self._take_entry(member_loc):
            return None
        self.findings.extend(name_findings(name, member_loc))
        if links is not None:
            links.member(name, member_loc)
        return member_loc

    @contextmanager
    def _links(self) -> Iterator[ArchiveLinks]:
        """One archive's links, judged when its walk ends, however it ends."""
        links = ArchiveLinks()
        try:
            yield links
        finally:
            self.findings.extend(links.findings())

    def _take_entry(self, location: str) -> bool:
        if self.budget.entries_left <= 0:
            self._limit("archive.limit.entries",
                        f"more than {self.config.max_entries} archive entries", location)
            return False
        self.budget.entries_left -= 1
        return True

    def _limit(self, fid: str, text: str, location: str) -> None:
        if not self.budget.exhausted:
            self._add(fid, Severity.MEDIUM, f"expansion stopped: {text}", location)
        self.budget.exhausted = True

    def _charge(self, produced: int, location: str) -> bool:
        self.budget.bytes_left -= produced
        if self.budget.bytes_left < 0:
            self._limit("archive.limit.total_bytes",
                        f"more than {self.config.max_total_bytes} bytes expanded", location)
            return False
        return True

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

    def _stored_member(self, data: bytes, start: int, size: int, kind: str,
                       member_loc: str) -> bytes | None:
        """A member stored as it is (ar, cpio): its bytes, charged to the budget; short
        if the archive ends inside it (reported)."""
        if size > self.budget.bytes_left:
            self._charge(size, member_loc)
            return None
        content = data[start : start + size]
        if len(content) < size:
            self._add("archive.corrupt", Severity.LOW,
                      f"{kind} member is cut off: {len(content)} of {size} bytes", member_loc)
        self._charge(len(content), member_loc)
        return content

    def _ar(self, data: bytes, location: str) -> Iterator[tuple[str, bytes]]:
        """ar: 60-byte headers of text fields; GNU long names come from the ``//``
        member, BSD ones (``#1/len``) open the member's data."""
        pos, long_names = len(_AR_MAGIC), b""
        while pos < len(data):
            header = data[pos : pos + 60]
            raw_size = header[48:58].strip(b" ")
            if len(header) < 60 or header[58:60] != b"`\n" or not raw_size.isdigit():
                self._add("archive.corrupt", Severity.LOW,
                          f"ar member header unreadable at offset {pos}", location)
                return
            raw_name, size, start = header[:16].rstrip(b" "), int(raw_size), pos + 60
            pos = start + size + (size & 1)  # members are padded to an even offset
            if raw_name == b"//":
                long_names = data[start : start + size]
                continue
            if raw_name.startswith(b"#1/") and raw_name[3:].isdigit():
                name_len = min(int(raw_name[3:]), size)
                raw_name, start, size = data[start : start + name_len].rstrip(b"\0"), \
                    start + name_len, size - name_len
            elif raw_name[:1] == b"/" and raw_name[1:].isdigit():
                at = int(raw_name[1:])
                end = long_names.find(b"/\n", at)
                raw_name = long_names[at : end if end >= 0 else len(long_names)]
            name = raw_name.decode("utf-8", "replace")
            if name in _AR_INDEXES:
                continue
            name = name.removesuffix("/")  # GNU ends short names with "/"
            member_loc = self._enter(name, location)
            if member_loc is None:
                return
            content = self._stored_member(data, start, size, "ar", member_loc)
            if content is None:
                return
            yield name, content

    def _cpio(self, data: bytes, location: str) -> Iterator[tuple[str, bytes]]:
        """cpio (newc, crc, odc); links and devices are findings. Archives may follow one
        another (an initramfs: early microcode, then the main archive, often compressed):
        after a trailer and its zero padding, another cpio archive is read on, and any
        other data is a member of its own, named by its offset, so that it is scanned
        (and expanded, if it is a compressed stream) instead of passing unseen."""
        with self._links() as links:
            yield from self._cpio_members(data, location, links)

    def _cpio_members(self, data: bytes, location: str,
                      links: ArchiveLinks) -> Iterator[tuple[str, bytes]]:
        pos = 0
        while pos < len(data):
            fmt = _cpio_format(data, pos)
            if fmt is None:
                self._add("archive.corrupt", Severity.LOW,
                          f"cpio header unreadable at offset {pos}", location)
                return
            mode, size, name_size = (int(data[pos + o : pos + o + w], fmt.base)
                                     for o, w in fmt.fields)
            name_start = pos + fmt.header
            raw_name = data[name_start : name_start + name_size]
            if name_size < 1 or len(raw_name) < name_size:
                self._add("archive.corrupt", Severity.LOW,
                          f"cpio member name cut off at offset {pos}", location)
                return
            name = raw_name.rstrip(b"\0").decode("utf-8", "replace")
            start = name_start + name_size + _pad(fmt.header + name_size, fmt.align)
            pos = start + size + _pad(size, fmt.align)
            if name == CPIO_TRAILER:
                after = _NOT_ZERO.search(data, pos)  # past the trailer's zero padding
                pos = after.start() if after else len(data)
                if pos < len(data) and _cpio_format(data, pos) is None:
                    yield from self._after_trailer(data, pos, location)
                    break
                continue
            member_loc = self._enter(name, location, links)
            if member_loc is None:
                return
            if stat.S_ISLNK(mode):
                target = data[start : start + min(size, 4096)].decode("utf-8", "replace")
                links.link(name, target, SYMLINK, member_loc)
                continue
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
                self._add("archive.device", Severity.MEDIUM, "member is a device or FIFO",
                          member_loc)
                continue
            # Hard links (newc stores the data once, with the last name of an inode) join
            # members of this archive only: nothing to report. Any other member that
            # carries data is scanned, whatever its mode says.
            if stat.S_ISDIR(mode) or size == 0:
                continue
            content = self._stored_member(data, start, size, "cpio", member_loc)
            if content is None:
                return
            yield name, content
        links.complete = True

    def _after_trailer(self, data: bytes, pos: int, location: str) -> Iterator[tuple[str, bytes]]:
        name = f"data after the cpio trailer at offset {pos}"
        member_loc = self._enter(name, location)
        if member_loc is None:
            return
        content = self._stored_member(data, pos, len(data) - pos, "cpio", member_loc)
        if content is not None:
            yield name, content

    def _sevenzip(self, data: bytes, location: str) -> Iterator[tuple[str, bytes]]:
        cfg = self.config
        try:
            archive = py7zr.SevenZipFile(io.BytesIO(data), mode="r")
        except py7zr.exceptions.PasswordRequired:
            self._add("archive.encrypted", Severity.MEDIUM,
                      "7z archive has an encrypted header and cannot be scanned", location)
            return
        except (py7zr.exceptions.ArchiveError, lzma.LZMAError, ValueError, OSError,
                EOFError) as exc:
            self._add("archive.corrupt", Severity.LOW, f"7z unreadable: {exc}", location)
            return
        with archive:
            infos = archive.list()
            if len(infos) > self.budget.entries_left:
                self._limit("archive.limit.entries", f"7z holds {len(infos)} entries",
                            location)
                return
            if archive.needs_password():
                self._add("archive.encrypted", Severity.MEDIUM,
                          "7z archive is encrypted and cannot be scanned", location)
                return
            declared = sum(i.uncompressed for i in infos)
            if declared > cfg.ratio_min_bytes and declared > cfg.max_ratio * len(data):
                self._add("archive.bomb", Severity.HIGH,
                          f"7z declares {declared} bytes from {len(data)}; not expanded",
                          location)
                return
            if declared > self.budget.bytes_left:
                self._limit("archive.limit.total_bytes", f"7z declares {declared} bytes",
                            location)
                return
            wanted: list[str] = []
            with self._links() as links:
                for info in infos:
                    member_loc = self._enter(info.filename, location, links)
                    if member_loc is None:
                        return
                    if info.is_symlink:
                        links.link(info.filename, None, SYMLINK, member_loc)  # target not read
                    elif info.is_file:
                        wanted.append(info.filename)
            factory = _CappedFactory(self.budget.bytes_left)
            try:
                archive.extract(targets=wanted, factory=factory)
            except BudgetExhausted:
                self._charge(self.budget.bytes_left + 1, location)
                return
            except (py7zr.exceptions.ArchiveError, lzma.LZMAError, ValueError, OSError,
                    EOFError) as exc:
                self._add("archive.corrupt", Severity.LOW, f"7z does not decompress: {exc}",
                          location)
        for name, buffer in factory.products.items():
            if self._charge(len(buffer.data), f"{location}!{name}"):
                yield name, bytes(buffer.data)


def _inner_name(location: str) -> str:
    last = location.rsplit("!", 1)[-1].rsplit("/", 1)[-1]
    for suffix, replacement in ((".tgz", ".tar"), (".gz", ""), (".bz2", ""), (".xz", "")):
        if last.lower().endswith(suffix):
            return last[: -len(suffix)] + replacement
    return last + ".out"


class _CappedBuffer(py7zr.io.Py7zIO):
    """In-memory sink for one 7z member that aborts extraction at the shared cap."""

    def __init__(self, owner: _CappedFactory) -> None:
        self.owner = owner
        self.data = bytearray()

    def write(self, s: bytes | bytearray) -> int:
        self.owner.left -= len(s)
        if self.owner.left < 0:
            raise BudgetExhausted
        self.data += s
        return len(s)

    def read(self, size: int | None = None) -> bytes:
        return bytes(self.data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def flush(self) -> None:
        return None

    def size(self) -> int:
        return len(self.data)


class _CappedFactory(py7zr.io.WriterFactory):
    def __init__(self, cap: int) -> None:
        self.left = cap
        self.products: dict[str, _CappedBuffer] = {}

    def create(self, filename: str) -> py7zr.io.Py7zIO:
        buffer = _CappedBuffer(self)
        self.products[filename] = buffer
        return buffer
