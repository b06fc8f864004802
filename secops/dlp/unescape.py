"""JSON string escapes and HTML character references, decoded with an offset map.

Exports and web pages hide values behind escapes: ``john\\u002edoe@corp.com`` and
``https:\\/\\/u:pw@host`` in JSON, ``jane&#64;corp.com`` or ``&lt;secret&gt;`` in
HTML. :func:`decode` returns the decoded text with an :class:`OffsetMap`, so that a
finding in the decoded text is reported at the offsets of the original characters
(its first escape's start, its last escape's end).

Decoded: JSON's ``\\uXXXX`` (surrogate pairs joined), ``\\"``, ``\\\\``, ``\\/``,
``\\b``, ``\\f``, ``\\n``, ``\\r``, ``\\t``; HTML's numeric references (``&#64;``,
``&#x40;``) and named ones terminated by ``;`` (``&amp;``, ``&commat;``). A reference
without its ``;`` is left as it is (``&copy`` in a URL query is usually not one).
"""

from __future__ import annotations

import html
import re
from bisect import bisect_right
from dataclasses import dataclass

_ESCAPE = re.compile(
    r"\\(?:u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})|u([0-9a-fA-F]{4})"
    r"|([\"\\/bfnrt]))"
    r"|&(#[0-9]{1,7};|#[xX][0-9a-fA-F]{1,6};|[A-Za-z][A-Za-z0-9]{1,31};)")
_SIMPLE = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r",
           "t": "\t"}
_QUICK = re.compile(r"\\[u\"\\/bfnrt]|&#?[A-Za-z0-9]{1,32};")


@dataclass(frozen=True, slots=True)
class OffsetMap:
    """Where each decoded character came from: replacement ``i`` put one character at
    decoded offset ``decoded[i]`` for the original span ``[start[i], end[i])``;
    characters between replacements map one to one."""

    decoded: list[int]
    start: list[int]
    end: list[int]

    def original_start(self, pos: int) -> int:
        i = bisect_right(self.decoded, pos) - 1
        if i < 0:
            return pos
        if self.decoded[i] == pos:
            return self.start[i]
        return self.end[i] + (pos - self.decoded[i] - 1)

    def original_end(self, pos: int) -> int:
        """The original offset just after decoded character ``pos - 1``."""
        if pos <= 0:
            return 0
        i = bisect_right(self.decoded, pos - 1) - 1
        if i >= 0 and self.decoded[i] == pos - 1:
            return self.end[i]
        return self.original_start(pos - 1) + 1

    def decoded_offset(self, original: int) -> int:
        """The decoded offset of the character at (or the escape containing) ``original``."""
        i = bisect_right(self.start, original) - 1
        if i < 0:
            return original
        if original < self.end[i]:
            return self.decoded[i]
        return self.decoded[i] + 1 + (original - self.end[i])


def needs_decoding(text: str) -> bool:
    return ("\\" in text or "&" in text) and _QUICK.search(text) is not None


def decode(text: str) -> tuple[str, OffsetMap] | None:
    """The decoded text and its offset map, or ``None`` when nothing was decoded."""
    if not needs_decoding(text):
        return None
    pieces: list[str] = []
    decoded: list[int] = []
    starts: list[int] = []
    ends: list[int] = []
    last = 0
    out_len = 0
    for m in _ESCAPE.finditer(text):
        high, low, code, simple, entity = m.groups()
        if high is not None:
            char = chr(0x10000 + ((int(high, 16) - 0xD800) << 10) + (int(low, 16) - 0xDC00))
        elif code is not None:
            value = int(code, 16)
            char = "\ufffd" if 0xD800 <= value <= 0xDFFF else chr(value)
        elif simple is not None:
            char = _SIMPLE[simple]
        else:
            char = html.unescape("&" + entity)
            if len(char) != 1:  # unknown name, or one that stands for two characters
                continue
        pieces.append(text[last:m.start()])
        out_len += m.start() - last
        decoded.append(out_len)
        starts.append(m.start())
        ends.append(m.end())
        pieces.append(char)
        out_len += 1
        last = m.end()
    if not decoded:
        return None
    pieces.append(text[last:])
    return "".join(pieces), OffsetMap(decoded, starts, ends)
