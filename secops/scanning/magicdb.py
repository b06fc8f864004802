"""libmagic's database without the tests that a given ASCII text cannot pass.

On text that none of its earlier checks recognised, libmagic runs its text tests: about
400 string searches and regular expressions of the compiled database, most of them over
the whole buffer. On plain text none of them passes, and they are most of libmagic's
time (about 1.5 ms of 1.7 ms on 4 KiB of a log file).

Each of those tests can only pass on a text that contains a certain run of characters:
the string it compares or searches for (a part between spaces, when its spaces match
any amount of white space), or a literal run of its regular expression that every match
contains (outside groups, brackets and optional parts; a regular expression with a
top-level ``|`` has none). :func:`reduce_database` drops the top-level text tests whose
run is at least ``KEY_MIN`` characters long, and the top-level binary tests that compare
a byte ASCII text cannot hold (an exact string or number with such a byte), each with
its continuation lines, and keeps every other test. For ASCII text (``ASCII_TEXT``: the
bytes libmagic's encoding check takes as ASCII text, so that the text is its own text
buffer) that contains none of the dropped text tests' runs, compared
case-insensitively as every such test's match satisfies, the reduced database gives
libmagic's exact answer, MIME type and description: a top-level test that fails prints
nothing and sets nothing a later test reads, so leaving it out changes nothing. Other
content gets the whole database. The runs are looked for in one pass by a small YARA
rule set (the engine's YARA library).

The compiled database format read here is version 18, and the behaviour relied on is
that of libmagic 5.43 to 5.45 (``LIBMAGIC_VERSIONS``); with another libmagic or
database format, or a database path this module cannot follow, :func:`load` returns
``None`` and every text gets the whole database.
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import struct
import tempfile
import threading
from dataclasses import dataclass

import magic
import yara

log = logging.getLogger(__name__)

LIBMAGIC_VERSIONS = range(543, 546)  # magic_version(): 5.43 to 5.45
MGC_MAGIC = 0xF11E041C
MGC_VERSION = 18
ENTRY_SIZE = 376  # sizeof(struct magic) in that version; the header is one entry long
_VALUE, _VALUE_SIZE = 32, 128  # where an entry's string value lies
_BINTEST, _TEXTTEST = 0x20, 0x40  # struct magic.flag: a test for the binary / text pass
_STRING, _REGEX, _SEARCH = 5, 17, 20
# byte, short, long; big- and little-endian short and long: their sizes (libmagic checks
# that these lie inside the buffer; it pads quads and dates with zeros instead)
_NUMBERS = {1: 1, 2: 2, 4: 4, 7: 2, 8: 4, 10: 2, 11: 4}
_TEST_KIND_FLAGS = 0x60  # the string flags t and b: which pass, not how to compare
_COMPACT_WHITESPACE = 0x3  # string flags W and w: a space matches any white space
KEY_MIN = 4  # shorter runs are common in text: their tests stay in the database

# The bytes libmagic's encoding check (looks_ascii) accepts as ASCII text: BEL to CR,
# ESC and the printable characters. Content of these bytes alone is its own text buffer.
ASCII_TEXT = bytes([7, 8, 9, 10, 11, 12, 13, 27]) + bytes(range(0x20, 0x7F))

_INTERVAL = re.compile(rb"\{(\d+)(?:,\d*)?\}")


def _bracket_end(pattern: bytes, start: int) -> int | None:
    """The index after the bracket expression opening at ``start``, or ``None``."""
    i = start + 1
    if pattern[i:i + 1] == b"^":
        i += 1
    if pattern[i:i + 1] == b"]":
        i += 1
    while i < len(pattern) and pattern[i:i + 1] != b"]":
        if pattern[i:i + 2] in (b"[:", b"[.", b"[="):
            close = pattern.find(pattern[i + 1:i + 2] + b"]", i + 2)
            if close < 0:
                return None
            i = close + 2
        else:
            i += 1
    return i + 1 if i < len(pattern) else None


def _group_end(pattern: bytes, start: int) -> int | None:
    """The index after the parenthesised group opening at ``start``, or ``None``."""
    depth, i = 0, start
    while i < len(pattern):
        char = pattern[i:i + 1]
        if char == b"\\":
            i += 2
            continue
        if char == b"[":
            end = _bracket_end(pattern, i)
            if end is None:
                return None
            i = end
            continue
        depth += {b"(": 1, b")": -1}.get(char, 0)
        i += 1
        if depth == 0:
            return i
    return None


def regex_runs(pattern: bytes) -> list[bytes] | None:
    """Literal runs, lower-cased, that every match of this POSIX extended regular
    expression contains; ``None`` when it has a top-level alternation or a construct
    read here with doubt. Groups, bracket expressions, ``.``, anchors and GNU escapes
    (``\\w``, ``\\<``) end a run; a character made optional by ``?``, ``*`` or ``{0,}``
    leaves it."""
    runs: list[bytes] = []
    run = bytearray()
    literal = False  # whether the last atom is the run's last character
    i = 0
    while i < len(pattern):
        char = pattern[i:i + 1]
        if char == b"\\":
            escaped = pattern[i + 1:i + 2]
            if not escaped:
                return None
            i += 2
            if escaped.isalnum() or escaped in b"<>`'":
                runs.append(bytes(run))
                run, literal = bytearray(), False
            else:
                run += escaped.lower()
                literal = True
            continue
        if char in (b"[", b"("):
            end = (_bracket_end if char == b"[" else _group_end)(pattern, i)
            if end is None:
                return None
            runs.append(bytes(run))
            run, literal, i = bytearray(), False, end
            continue
        if char == b"|":
            return None
        if char in (b"*", b"?", b"+", b"{"):
            if char == b"{":
                interval = _INTERVAL.match(pattern, i)
                if interval is None:
                    return None
                optional, i = int(interval.group(1)) == 0, interval.end()
            else:
                optional, i = char != b"+", i + 1
            if literal and optional:
                del run[-1]
            runs.append(bytes(run))
            run, literal = bytearray(), False
            continue
        i += 1
        if char in (b".", b"^", b"$", b")"):
            runs.append(bytes(run))
            run, literal = bytearray(), False
        else:
            run += char.lower()
            literal = True
    runs.append(bytes(run))
    return [r for r in runs if r]


def test_key(kind: int, str_flags: int, value: bytes) -> bytes | None:
    """The longest run of characters (lower-cased) that a text must contain for this
    top-level text test to pass, or ``None`` if the test is not one read here."""
    if kind == _REGEX:
        runs = regex_runs(value.split(b"\0", 1)[0])  # compiled as a C string
    elif kind in (_STRING, _SEARCH):
        runs = value.lower().split() if str_flags & _COMPACT_WHITESPACE else [value.lower()]
    else:
        return None
    return max(runs, key=len) if runs else None


@dataclass(frozen=True, slots=True)
class Reduced:
    """A compiled database without the text tests that ``keys`` stand for."""

    data: bytes
    keys: frozenset[bytes]
    removed: int  # top-level tests dropped


def _impossible_on_ascii_text(raw: bytes, start: int) -> bool:
    """Whether this top-level binary test compares bytes that ASCII text cannot hold:
    an equality of a byte, short or long (no mask, no operator) or an exact string
    (no case or white-space flags) whose value has a byte outside ``ASCII_TEXT``. Such a
    test reads its bytes from the buffer itself (libmagic checks that they lie inside)."""
    kind, mask_op = raw[start + 6], raw[start + 9]
    if kind in _NUMBERS:
        (mask, value) = struct.unpack_from("=QQ", raw, start + 24)
        if mask or mask_op:
            return False
        compared = value.to_bytes(8, "little")[:_NUMBERS[kind]]  # the low bytes
    elif kind in (_STRING, _SEARCH):
        (str_flags,) = struct.unpack_from("=I", raw, start + 28)
        if str_flags & ~_TEST_KIND_FLAGS:
            return False
        compared = raw[start + _VALUE:start + _VALUE + min(raw[start + 5], _VALUE_SIZE)]
    else:
        return False
    return bool(compared.translate(None, ASCII_TEXT))


def reduce_database(raw: bytes) -> Reduced | None:
    """The compiled database ``raw`` without the top-level tests (and their continuation
    lines) that fail on ASCII text lacking ``keys``: text tests whose key run is at
    least ``KEY_MIN`` long, and binary tests that compare bytes ASCII text cannot hold;
    ``None`` for a format other than ``MGC_VERSION`` in this machine's byte order."""
    if len(raw) < ENTRY_SIZE or len(raw) % ENTRY_SIZE:
        return None
    magic_no, version, regular, named = struct.unpack_from("=IIII", raw, 0)
    if (magic_no, version) != (MGC_MAGIC, MGC_VERSION):
        return None
    if (regular + named + 1) * ENTRY_SIZE != len(raw):
        return None
    kept: list[bytes] = []
    keys: set[bytes] = set()
    removed = 0
    start = ENTRY_SIZE
    end_regular = ENTRY_SIZE * (regular + 1)
    while start < end_regular:
        stop = start + ENTRY_SIZE
        while stop < end_regular and struct.unpack_from("=H", raw, stop)[0] != 0:
            stop += ENTRY_SIZE  # continuation lines (cont_level > 0)
        flag, reln, vallen, kind = raw[start + 2], raw[start + 4], raw[start + 5], raw[start + 6]
        drop = False
        if reln == ord("=") and flag & _TEXTTEST:
            (str_flags,) = struct.unpack_from("=I", raw, start + 28)
            value = raw[start + _VALUE:start + _VALUE + min(vallen, _VALUE_SIZE)]
            key = test_key(kind, str_flags, value)
            # a NUL could be matched by the zeros libmagic pads a short buffer with
            if key is not None and len(key) >= KEY_MIN and b"\0" not in key:
                keys.add(key)
                drop = True
        elif reln == ord("=") and flag & _BINTEST:
            drop = _impossible_on_ascii_text(raw, start)
        if drop:
            removed += 1
        else:
            kept.append(raw[start:stop])
        start = stop
    body = b"".join(kept)
    header = bytearray(raw[:ENTRY_SIZE])
    struct.pack_into("=I", header, 8, len(body) // ENTRY_SIZE)
    return Reduced(bytes(header) + body + raw[end_regular:], frozenset(keys), removed)


def _key_rules(keys: frozenset[bytes]) -> yara.Rules:
    """One rule that matches any of ``keys``, case-insensitively (YARA's ``nocase``
    folds ASCII letters only, as ``bytes.lower`` does)."""
    hexed = ("".join(f"\\x{b:02x}" for b in key) for key in sorted(keys))
    strings = " ".join(f'$k{n} = "{text}" nocase' for n, text in enumerate(hexed))
    return yara.compile(source=f"rule key {{ strings: {strings} condition: any of them }}")


def _search_path() -> list[str]:
    """The database files and directories libmagic loads by default (``MAGIC`` or its
    built-in list), as ``magic_getpath`` gives them."""
    getpath = magic.libmagic.magic_getpath
    getpath.restype, getpath.argtypes = ctypes.c_char_p, [ctypes.c_char_p, ctypes.c_int]
    path = getpath(None, 0)
    return os.fsdecode(path).split(":") if path else []


@dataclass(frozen=True, slots=True)
class QuickDatabase:
    """The default database list with its compiled files reduced, and the check that
    tells for which content they give libmagic's answer."""

    components: tuple[str | bytes, ...]  # a path kept as it is, or a reduced database
    rules: yara.Rules
    removed: int

    def applies(self, head: bytes) -> bool:
        """Whether libmagic answers the same for ``head`` from the reduced database:
        ASCII text (its own text buffer) with none of the dropped tests' runs."""
        if head.translate(None, ASCII_TEXT):
            return False
        try:
            return not self.rules.match(data=head, fast=True)
        except yara.Error:
            return False

    def open(self, *, mime: bool) -> magic.Magic:
        """A libmagic handle on the reduced list (its files are written to the temporary
        directory for libmagic to read, then removed)."""
        written: list[str] = []
        try:
            paths = []
            for component in self.components:
                if isinstance(component, str):
                    paths.append(component)
                    continue
                fd, name = tempfile.mkstemp(prefix="secops-magic-", suffix=".mgc")
                written.append(name)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(component)
                paths.append(name)
            return magic.Magic(mime=mime, magic_file=":".join(paths))
        finally:
            for name in written:
                os.unlink(name)


def _build() -> QuickDatabase | None:
    if magic.version() not in LIBMAGIC_VERSIONS:
        return None
    components: list[str | bytes] = []
    keys: set[bytes] = set()
    removed = 0
    for component in _search_path():
        base = component[:-4] if component.endswith(".mgc") else component
        if ".mime" in component or os.path.exists(base + ".mime.mgc"):
            return None  # libmagic's old MIME-database names change its flags
        compiled = base + ".mgc"
        if not os.path.isfile(compiled):
            components.append(component)  # a source file or directory, read as it is
            continue
        with open(compiled, "rb") as handle:
            reduced = reduce_database(handle.read())
        if reduced is None:
            return None
        components.append(reduced.data)
        keys |= reduced.keys
        removed += reduced.removed
    if not removed:
        return None
    return QuickDatabase(tuple(components), _key_rules(frozenset(keys)), removed)


_lock = threading.Lock()
_built: list[QuickDatabase | None] = []


def load() -> QuickDatabase | None:
    """The reduced default database of this process (built once), or ``None`` when
    libmagic's database cannot be reduced here."""
    if _built:
        return _built[0]
    with _lock:
        if not _built:
            try:
                _built.append(_build())
            except (OSError, ValueError, yara.Error) as exc:
                log.debug("libmagic database not reduced: %s", exc)
                _built.append(None)
        return _built[0]
