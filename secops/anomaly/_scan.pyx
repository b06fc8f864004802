# cython: language_level=3
"""Native readers of the usual-shape lines of the anomaly engine's block paths.

``light_fields(lines)`` and ``sshd_fields(lines)`` return, for each line of a block,
exactly what ``parsers._block_matches(parsers._LIGHT_LINE, lines)`` and
``parsers._block_matches(parsers._SSHD_LINE, lines)`` return: the tuple of the regular
expression's groups, ``''`` for a group that does not take part. They scan characters
instead of running the expressions; ``tests/anomaly/test_scan.py`` checks them against
the expressions (the oracle) line by line.

Both expressions are anchored at a line start and end with ``$`` under ``re.M``, and no
part of them matches a line end: a line holding a ``\\n`` is read up to its first
``\\n``, as the expressions read it. ``\\s``/``\\S`` and ``\\d`` follow ``re``'s str
semantics (Unicode whitespace and decimal digits); the character classes written with
ranges (``[0-9]``, ``[A-Z]``, the address class) are ASCII.
"""

from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM


cdef extern from "Python.h":
    int PyUnicode_KIND(object o)
    void* PyUnicode_DATA(object o)
    Py_UCS4 PyUnicode_READ(int kind, void* data, Py_ssize_t index) nogil
    Py_ssize_t PyUnicode_GET_LENGTH(object o)
    str PyUnicode_Substring(object s, Py_ssize_t start, Py_ssize_t end)
    Py_ssize_t PyUnicode_FindChar(object s, Py_UCS4 ch, Py_ssize_t start, Py_ssize_t end,
                                  int direction) except -2
    bint Py_UNICODE_ISSPACE(Py_UCS4 ch) nogil
    bint Py_UNICODE_ISDECIMAL(Py_UCS4 ch) nogil


cdef str EMPTY = ""
cdef str INVALID_USER = "invalid user "


# One line being read: its characters and the end of its first segment (up to the first
# line end), the only part the expressions read.
cdef struct Text:
    int kind
    void* data
    Py_ssize_t n


cdef inline Py_UCS4 at(const Text* t, Py_ssize_t i) noexcept nogil:
    return PyUnicode_READ(t.kind, t.data, i)


cdef inline bint is_space(Py_UCS4 c) noexcept nogil:   # re's \s (str)
    return Py_UNICODE_ISSPACE(c)


cdef inline bint is_digit(Py_UCS4 c) noexcept nogil:   # re's \d (str)
    if c < 128:
        return 48 <= c <= 57
    return Py_UNICODE_ISDECIMAL(c)


cdef inline bint is_ascii_digit(Py_UCS4 c) noexcept nogil:   # [0-9]
    return 48 <= c <= 57


cdef inline bint is_address(Py_UCS4 c) noexcept nogil:   # [0-9A-Fa-f:.]
    return (48 <= c <= 58) or (65 <= c <= 70) or (97 <= c <= 102) or c == 46


cdef inline bint has(const Text* t, Py_ssize_t i, const char* literal,
                     Py_ssize_t size) noexcept nogil:
    """Whether the ASCII ``literal`` (of ``size`` characters) is at ``i``."""
    cdef Py_ssize_t k
    if i + size > t.n:
        return False
    for k in range(size):
        if at(t, i + k) != <Py_UCS4><unsigned char>literal[k]:
            return False
    return True


cdef inline Py_ssize_t non_space_run(const Text* t, Py_ssize_t i) noexcept nogil:
    """The end of the run of \\S characters from ``i``."""
    while i < t.n and not is_space(at(t, i)):
        i += 1
    return i


cdef inline bint space_at(const Text* t, Py_ssize_t i) noexcept nogil:
    return i < t.n and at(t, i) == 32


cdef int text_of(Text* t, object line) except -1:
    if not isinstance(line, str):
        raise TypeError(f"a line must be a str, not {type(line).__name__}")
    t.kind = PyUnicode_KIND(line)
    t.data = PyUnicode_DATA(line)
    cdef Py_ssize_t length = PyUnicode_GET_LENGTH(line)
    cdef Py_ssize_t end = PyUnicode_FindChar(line, 10, 0, length, 1)
    t.n = length if end == -1 else end
    return 0


cdef inline void put(tuple row, Py_ssize_t index, object value) noexcept:
    Py_INCREF(value)
    PyTuple_SET_ITEM(row, index, value)


# -- access log: _LIGHT_LINE ---------------------------------------------------------------
#
#   ^(?:\S+ \S+ \S+ \[([^\]\n]+)\] "([A-Z]+) (/[^ "\\?\n]*)(?:\?[^ "\\\n]*)? [^ "\\\n]+"
#   ([0-9]{3}) ([0-9]{1,19}|-)(?![0-9])[^\n]*|([^\n]*))$
#
# Every greedy run above is followed by a character its class excludes, so no backtracking
# changes a run's length: each run is its longest, and the line is of the usual shape
# exactly when each step below holds.

cdef inline bint quote_class(Py_UCS4 c) noexcept nogil:   # [^ "\\\n] (no \n in a segment)
    return c != 32 and c != 34 and c != 92


cdef tuple light_row(object line, const Text* t):
    cdef Py_ssize_t i = 0, j, k, ts, te, ms, me, ps, pe, ss, bs
    cdef Py_ssize_t n = t.n
    cdef Py_UCS4 c
    for k in range(3):   # \S+ \S+ \S+ (each then one space)
        j = non_space_run(t, i)
        if j == i or not space_at(t, j):
            return None
        i = j + 1
    if i >= n or at(t, i) != 91:   # [
        return None
    i += 1
    ts = i
    while i < n and at(t, i) != 93:   # ([^\]\n]+)\]
        i += 1
    if i == ts or i >= n:
        return None
    te = i
    if not has(t, i, b'] "', 3):
        return None
    i += 3
    ms = i
    while i < n and 65 <= at(t, i) <= 90:   # ([A-Z]+) then a space
        i += 1
    if i == ms or not space_at(t, i):
        return None
    me = i
    i += 1
    if i >= n or at(t, i) != 47:   # (/[^ "\\?\n]*)
        return None
    ps = i
    i += 1
    while i < n:
        c = at(t, i)
        if c == 32 or c == 34 or c == 92 or c == 63:
            break
        i += 1
    pe = i
    if i < n and at(t, i) == 63:   # (?:\?[^ "\\\n]*)?
        i += 1
        while i < n and quote_class(at(t, i)):
            i += 1
    if not space_at(t, i):
        return None
    i += 1
    j = i
    while i < n and quote_class(at(t, i)):   # [^ "\\\n]+" then a space
        i += 1
    if i == j or not has(t, i, b'" ', 2):
        return None
    i += 2
    if i + 3 > n:   # ([0-9]{3}) then a space
        return None
    ss = i
    for k in range(3):
        if not is_ascii_digit(at(t, i + k)):
            return None
    i += 3
    if not space_at(t, i):
        return None
    i += 1
    bs = i
    if i < n and is_ascii_digit(at(t, i)):   # ([0-9]{1,19}|-)(?![0-9])
        while i < n and is_ascii_digit(at(t, i)):
            i += 1
        if i - bs > 19:
            return None
    elif i < n and at(t, i) == 45:
        i += 1
        if i < n and is_ascii_digit(at(t, i)):
            return None
    else:
        return None
    return (PyUnicode_Substring(line, ts, te), PyUnicode_Substring(line, ms, me),
            PyUnicode_Substring(line, ps, pe), PyUnicode_Substring(line, ss, ss + 3),
            PyUnicode_Substring(line, bs, i), EMPTY)


def light_fields(list lines not None) -> list:
    """``_block_matches(_LIGHT_LINE, lines)``: (time, method, path, status, bytes, other)
    for each line, ``other`` being the whole line when it is not of the usual shape."""
    cdef Py_ssize_t count = len(lines), index
    cdef list out = PyList_New(count)
    cdef Text t
    cdef object line, row
    for index in range(count):
        line = lines[index]
        text_of(&t, line)
        row = light_row(line, &t)
        if row is None:
            row = (EMPTY, EMPTY, EMPTY, EMPTY, EMPTY, PyUnicode_Substring(line, 0, t.n))
        Py_INCREF(row)
        PyList_SET_ITEM(out, index, row)
    return out


# -- auth.log: _SSHD_LINE ------------------------------------------------------------------
#
#   ^(?:([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d\d:\d\d:\d\d) (\S+) sshd\[\d+\]:
#   (?:Failed (?:password|publickey|keyboard-interactive/pam|none|hostbased) for
#      (invalid user )?(.*?) from ([0-9A-Fa-f:.]+) port \d+[^\n]*
#    |Accepted (\S+) for (\S+) from ([0-9A-Fa-f:.]+) port \d+[^\n]*
#    |(?!Failed|Accepted|Invalid|message repeated )([^\n]*))|[^\n]*)$
#
# The stamp, host and pid runs cannot backtrack (each is followed by a character its class
# excludes; ` {1,2}` then \d takes two spaces when there are two). After "]: " at most one
# of the three alternatives can start, and the lookahead rejects a message starting as the
# first two: when the one that starts fails, the line is the last alternative (no group).
# The only real search is the lazy user of a failure: the first end from which
# " from ADDRESS port DIGIT" follows, first with "invalid user " taken (the optional group
# is greedy), then, when no end after it works, without it.

cdef bint address_port(const Text* t, Py_ssize_t i, Py_ssize_t* end) noexcept nogil:
    """Whether ``([0-9A-Fa-f:.]+) port \\d`` is at ``i``; ``end[0]``: the address's end."""
    cdef Py_ssize_t j = i
    while j < t.n and is_address(at(t, j)):
        j += 1
    if j == i or not has(t, j, b" port ", 6) or j + 6 >= t.n or not is_digit(at(t, j + 6)):
        return False
    end[0] = j
    return True


cdef bint lazy_user(const Text* t, Py_ssize_t start, Py_ssize_t* user_end,
                    Py_ssize_t* address_end) noexcept nogil:
    """``(.*?) from ([0-9A-Fa-f:.]+) port \\d+`` from ``start``: the first user end."""
    cdef Py_ssize_t e = start
    while e + 6 <= t.n:
        if at(t, e) == 32 and has(t, e, b" from ", 6) and address_port(t, e + 6, address_end):
            user_end[0] = e
            return True
        e += 1
    return False


cdef tuple sshd_row(object line, const Text* t):
    cdef Py_ssize_t n = t.n, i, ds, de, hs, hos, hoe, q, p, j, k, us, ue, ws, we, a_end
    cdef Py_UCS4 c
    if n < 4:
        return None
    c = at(t, 0)
    if not 65 <= c <= 90:
        return None
    for k in range(1, 3):
        c = at(t, k)
        if not 97 <= c <= 122:
            return None
    if at(t, 3) != 32:
        return None
    i = 4
    if space_at(t, i):
        i += 1
    ds = i
    while i < n and i - ds < 2 and is_digit(at(t, i)):
        i += 1
    if i == ds or not space_at(t, i):
        return None
    de = i
    i += 1
    hs = i
    if i + 8 > n:
        return None
    for k in (0, 1, 3, 4, 6, 7):
        if not is_digit(at(t, i + k)):
            return None
    if at(t, i + 2) != 58 or at(t, i + 5) != 58:
        return None
    i += 8
    if not space_at(t, i):
        return None
    i += 1
    hos = i
    i = non_space_run(t, i)
    if i == hos or not has(t, i, b" sshd[", 6):
        return None
    hoe = i
    i += 6
    j = i
    while i < n and is_digit(at(t, i)):
        i += 1
    if i == j or not has(t, i, b"]: ", 3):
        return None
    q = i + 3
    cdef tuple row = PyTuple_New(11)
    cdef int k2
    if has(t, q, b"Failed", 6):
        if not space_at(t, q + 6):
            return None
        i = q + 7
        if has(t, i, b"password", 8):
            i += 8
        elif has(t, i, b"publickey", 9):
            i += 9
        elif has(t, i, b"keyboard-interactive/pam", 24):
            i += 24
        elif has(t, i, b"none", 4):
            i += 4
        elif has(t, i, b"hostbased", 9):
            i += 9
        else:
            return None
        if not has(t, i, b" for ", 5):
            return None
        p = i + 5
        if has(t, p, b"invalid user ", 13) and lazy_user(t, p + 13, &ue, &a_end):
            us = p + 13
            put(row, 4, INVALID_USER)
        elif lazy_user(t, p, &ue, &a_end):
            us = p
            put(row, 4, EMPTY)
        else:
            return None
        put(row, 5, PyUnicode_Substring(line, us, ue))
        put(row, 6, PyUnicode_Substring(line, ue + 6, a_end))
        for k2 in range(7, 11):
            put(row, k2, EMPTY)
    elif has(t, q, b"Accepted", 8):
        if not space_at(t, q + 8):
            return None
        ws = q + 9
        we = non_space_run(t, ws)
        if we == ws or not has(t, we, b" for ", 5):
            return None
        us = we + 5
        ue = non_space_run(t, us)
        if ue == us or not has(t, ue, b" from ", 6) or not address_port(t, ue + 6, &a_end):
            return None
        for k2 in range(4, 7):
            put(row, k2, EMPTY)
        put(row, 7, PyUnicode_Substring(line, ws, we))
        put(row, 8, PyUnicode_Substring(line, us, ue))
        put(row, 9, PyUnicode_Substring(line, ue + 6, a_end))
        put(row, 10, EMPTY)
    elif has(t, q, b"Invalid", 7) or has(t, q, b"message repeated ", 17):
        return None
    else:
        for k2 in range(4, 10):
            put(row, k2, EMPTY)
        put(row, 10, PyUnicode_Substring(line, q, n))
    put(row, 0, PyUnicode_Substring(line, 0, 3))
    put(row, 1, PyUnicode_Substring(line, ds, de))
    put(row, 2, PyUnicode_Substring(line, hs, hs + 8))
    put(row, 3, PyUnicode_Substring(line, hos, hoe))
    return row


cdef tuple OTHER_SSHD = (EMPTY,) * 11


def sshd_fields(list lines not None) -> list:
    """``_block_matches(_SSHD_LINE, lines)``: (month, day, time, host, invalid, user,
    address, method, user, address, message) for each line; all ``''`` for a line that
    is not of the usual shape."""
    cdef Py_ssize_t count = len(lines), index
    cdef list out = PyList_New(count)
    cdef Text t
    cdef object line, row
    for index in range(count):
        line = lines[index]
        text_of(&t, line)
        row = sshd_row(line, &t)
        if row is None:
            row = OTHER_SSHD
        Py_INCREF(row)
        PyList_SET_ITEM(out, index, row)
    return out
