"""ar (Debian packages, static libraries) and cpio (newc, crc and odc) parsing.

Both store their members as they are, so a member is a slice of the archive's bytes,
charged to the budget like any other. Links and devices are findings; nothing is ever
written.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator

from secops.scanning.containers import AR_MAGIC, cpio_format
from secops.scanning.expansion import ExpansionBase
from secops.scanning.links import SYMLINK, ArchiveLinks
from secops.scanning.models import Severity

# ar's index members (GNU, 64-bit GNU, BSD): symbol tables for the linker, not content
_AR_INDEXES = frozenset({"/", "/SYM64/", "__.SYMDEF", "__.SYMDEF SORTED"})
_NOT_ZERO = re.compile(rb"[^\0]")
CPIO_TRAILER = "TRAILER!!!"


def _pad(n: int, align: int) -> int:
    return -n % align


class StoredArchiveReader(ExpansionBase):
    """Reads the members of ar and cpio archives."""

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
        pos, long_names = len(AR_MAGIC), b""
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
            fmt = cpio_format(data, pos)
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
                if pos < len(data) and cpio_format(data, pos) is None:
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
