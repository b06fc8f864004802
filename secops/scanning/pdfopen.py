"""What a PDF's ``/OpenAction`` does: navigate (benign) or run or fetch something.

Most PDFs written by office suites and LaTeX carry an ``/OpenAction`` that only opens
the document at a page or zoom: a destination array (``[3 0 R /Fit]``), or a ``/GoTo``
action with such a destination. Those are informational. An open action that runs or
fetches something is suspicious: ``/JavaScript``, ``/Launch``, ``/URI``,
``/SubmitForm``, ``/ImportData``, ``/GoToR`` and ``/GoToE`` (other files, embedded
ones included), ``/Rendition``, ``/Movie``, ``/Sound``, ``/ResetForm``, and any type
not known to be navigation; so is an action whose ``/Next`` chain holds one, and an
open action that cannot be resolved (a reference to an object this reader cannot find).

The value is read after the name (any ``#xx`` spelling) in the file body and in the
decoded object streams: a direct array or dictionary is classified in place; an
indirect reference ``N G R`` is looked up among the body's ``N G obj`` objects and the
objects of the inflated object streams (read by their ``N offset`` header).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from secops.scanning.models import Finding, Severity

NAVIGATION = frozenset({b"GoTo", b"Named", b"SetOCGState", b"Thread", b"Trans", b"GoTo3DView"})
MAX_OBJECT = 4096  # bytes kept per object-stream object
MAX_OBJECTS = 20_000  # object-stream objects kept per PDF
_HEX = re.compile(rb"#([0-9A-Fa-f]{2})")
_REF = re.compile(rb"\s*(\d+)\s+(\d+)\s+R\b")
_ACTION_TYPE = re.compile(rb"/S\s*/([A-Za-z0-9]+)")
_JS_KEY = re.compile(rb"/JS(?![A-Za-z0-9])")
_HEADER_PAIR = re.compile(rb"\s*(\d+)\s+(\d+)")
_SPACE = re.compile(rb"[ \t\r\n\x00\x0c]{0,64}")


def _spelled(name: bytes) -> bytes:
    def char(b: int) -> bytes:
        hexa = f"{b:02x}"
        return b"(?:" + re.escape(bytes([b])) + b"|#(?i:" + hexa.encode() + b"))"

    return b"".join(char(b) for b in name)


_OPEN_ACTION = re.compile(b"/" + _spelled(b"OpenAction") + rb"(?![A-Za-z0-9])")


def _decode(data: bytes) -> bytes:
    return _HEX.sub(lambda m: bytes([int(m.group(1), 16)]), data) if b"#" in data else data


def _balanced(data: bytes, start: int, open_: bytes, close: bytes) -> bytes:
    depth, i = 0, start
    end = min(len(data), start + 64 * 1024)
    while i < end:
        if data.startswith(open_, i):
            depth += 1
            i += len(open_)
            continue
        if data.startswith(close, i):
            depth -= 1
            i += len(close)
            if depth == 0:
                return data[start:i]
            continue
        i += 1
    return data[start:end]


@dataclass
class OpenActions:
    """Collects open-action values and object-stream objects, then classifies."""

    values: list[bytes] = field(default_factory=list)
    objects: dict[int, bytes] = field(default_factory=dict)
    raw: bytes = b""

    def feed_body(self, data: bytes) -> None:
        """The PDF's own bytes (objects ``N G obj`` are resolved in them later)."""
        self.raw = data  # read for open actions only if the name was seen (finding())

    def feed_stream(self, body: bytes | bytearray) -> None:
        """The inflated content of one object stream."""
        data = body  # not copied: a stream may be megabytes
        self._values(data)
        pairs: list[tuple[int, int]] = []
        pos = 0
        while len(pairs) < 10_000 and (m := _HEADER_PAIR.match(data, pos)) is not None:
            pairs.append((int(m.group(1)), int(m.group(2))))
            pos = m.end()
        if not pairs:
            return
        gap = _SPACE.match(data, pos)
        first = gap.end() if gap is not None else pos
        for i, (number, offset) in enumerate(pairs):
            if len(self.objects) >= MAX_OBJECTS:
                break
            end = pairs[i + 1][1] if i + 1 < len(pairs) else len(data) - first
            self.objects.setdefault(number, bytes(data[first + offset:first + min(
                end, offset + MAX_OBJECT)]))

    def _values(self, data: bytes | bytearray) -> None:
        for match in _OPEN_ACTION.finditer(data):
            self.values.append(_decode(bytes(data[match.end():match.end() + 8192])))
            if len(self.values) >= 32:
                break

    def _resolve(self, number: int, generation: int) -> bytes | None:
        if number in self.objects:
            return _decode(self.objects[number])
        found = re.search(rb"(?<![0-9])%d\s+%d\s+obj\b" % (number, generation), self.raw)
        if found is None:
            return None
        return _decode(self.raw[found.end():found.end() + 8192])

    def _classify(self, value: bytes, hops: int = 0) -> str | None:
        """``None`` for navigation, else a description of what the action does."""
        text = value.lstrip(b" \t\r\n\x00\x0c")
        if text.startswith(b"["):
            return None  # a destination: page and view
        if text.startswith(b"<<"):
            action = _balanced(text, 0, b"<<", b">>")
            kinds = [m.group(1) for m in _ACTION_TYPE.finditer(action)]
            risky = sorted({k.decode() for k in kinds if k not in NAVIGATION})
            if _JS_KEY.search(action) and "JavaScript" not in risky:
                risky.append("JavaScript")
            if risky:
                return "/" + ", /".join(risky) + " action"
            if not kinds:
                return "a dictionary that is not an action"
            return None
        ref = _REF.match(text)
        if ref is not None and hops < 4:
            target = self._resolve(int(ref.group(1)), int(ref.group(2)))
            if target is None:
                return "an object that could not be resolved"
            return self._classify(target, hops + 1)
        return "a value that could not be read"

    def finding(self, location: str | None, suffix: str) -> Finding:
        self._values(self.raw)
        risks = [r for r in (self._classify(v) for v in self.values) if r is not None]
        if not self.values:
            risks = ["an action that could not be read"]
        if risks:
            return Finding("pdf.open_action", Severity.MEDIUM,
                           f"PDF runs an action when opened: {risks[0]}{suffix}", location)
        return Finding("pdf.open_action", Severity.INFO,
                       "PDF opens at a page or view when opened (navigation only)" + suffix,
                       location)
