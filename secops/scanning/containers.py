"""Container recognition: which archive format a file is, by its own signature.

:func:`archive_kind` names the containers the scanning engine expands (zip, tar, gzip,
bzip2, xz, 7z, ar, cpio); :func:`unexpanded_container` names those it recognises but does
not expand (RAR, cab, disc images...), so that they are reported instead of called
clean. libmagic is not consulted. This module is the one the DLP engine shares with the
scanning engine to decide what is an archive.
"""

from __future__ import annotations

from typing import NamedTuple

from secops.scanning.models import Finding, Severity

ZIP, TAR, GZIP, BZIP2, XZ, SEVENZIP = "zip", "tar", "gzip", "bzip2", "xz", "7z"
AR, CPIO = "ar", "cpio"


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
    if data.startswith(AR_MAGIC):
        return AR
    if cpio_format(data) is not None:
        return CPIO
    return None


# Containers recognised by their own signatures but not expanded. Expanding them needs
# an external unpacker (unrar, cabextract...) or a parser of our own with the expansion
# limits of secops.scanning.archives, so their members get no type, hash, nested-archive
# or per-member YARA checks; saying nothing would pass them as clean. Compressed ones hide their
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


AR_MAGIC = b"!<arch>\n"
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
_OCTAL_DIGITS = frozenset(b"01234567")


class CpioFormat(NamedTuple):
    header: int  # bytes of the fixed header
    fields: tuple[tuple[int, int], ...]  # (offset, width) of mode, size, namesize
    base: int  # the fields' number base
    align: int  # header+name and data are padded to this


# newc and crc: 13 fields of 8 hex digits; odc: 6-digit and 11-digit octal fields.
_NEWC = CpioFormat(110, ((14, 8), (54, 8), (94, 8)), 16, 4)
_ODC = CpioFormat(76, ((18, 6), (65, 11), (59, 6)), 8, 1)


def cpio_format(data: bytes, offset: int = 0) -> CpioFormat | None:
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

