"""The 7z reader: py7zr extracts into memory buffers that abort at the budget's cap."""

from __future__ import annotations

import io
import lzma
from collections.abc import Iterator

import py7zr
import py7zr.exceptions
import py7zr.io

from secops.scanning.expansion import ExpansionBase
from secops.scanning.links import SYMLINK
from secops.scanning.models import Severity


class BudgetExhausted(Exception):
    """Raised inside a decompressor callback to abort a 7z extraction at the cap."""


class SevenZipReader(ExpansionBase):
    """Reads the members of 7z archives."""

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
