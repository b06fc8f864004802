"""Byte-string search over whole files, with the C library's ``memmem`` where it exists.

``bytes.find`` (two-way search since Python 3.10) runs at about 1 GB/s on compressed
data, where every byte value is as common as any other and its skip tables rarely skip
far; glibc's ``memmem`` finds the same first occurrence about three times faster there
(36 MB of PDFs searched for two 6-byte signatures: 59 ms against 18 ms). The answer is
the same either way: the offset of the first occurrence at or after ``start``, or -1.

``memmem`` reads the ``bytes`` object's own buffer: it is immutable and the caller holds
a reference for the length of the call, and ctypes releases the GIL while it runs. Other
buffer types, short haystacks (where the call costs more than it saves) and systems
without ``memmem`` use ``bytes.find``.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

_Memmem = Callable[[int, int, bytes, int], "int | None"]

# Below this many bytes the ctypes call costs more than the faster search saves.
NATIVE_MIN_BYTES = 64 * 1024


def _load_memmem() -> _Memmem | None:
    try:
        function = ctypes.CDLL(None).memmem  # the C library the interpreter runs on
    except (OSError, AttributeError, TypeError):
        return None
    function.restype = ctypes.c_void_p
    function.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
    memmem: _Memmem = function
    return memmem


_memmem = _load_memmem()


def find(data: bytes, needle: bytes, start: int = 0) -> int:
    """``data.find(needle, start)`` for ``start >= 0``, faster on large ``data``."""
    length = len(data)
    if (_memmem is None or type(data) is not bytes or not needle or start < 0
            or length - start < NATIVE_MIN_BYTES):
        return data.find(needle, start)
    base = ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value
    if base is None:
        return data.find(needle, start)
    hit = _memmem(base + start, length - start, needle, len(needle))
    return -1 if hit is None else int(hit) - base
