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
from libc.string cimport memchr, memcmp


cdef extern from "Python.h":
    ctypedef unsigned char Py_UCS1
    ctypedef unsigned short Py_UCS2
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


# A line is read as the array of its characters (one, two or four bytes each: the
# functions below are compiled for each width) up to the end of its first segment ``n``
# (its first line end, or its length), the only part the expressions read.
ctypedef fused char_t:
    Py_UCS1
    Py_UCS2
    Py_UCS4


cdef inline bint is_space(Py_UCS4 c) noexcept nogil:   # re's \s (str)
    if 32 < c < 127:   # printable ASCII other than the space: the common case
        return False
    return Py_UNICODE_ISSPACE(c)


cdef inline bint is_digit(Py_UCS4 c) noexcept nogil:   # re's \d (str)
    if c < 128:
        return 48 <= c <= 57
    return Py_UNICODE_ISDECIMAL(c)


cdef inline bint is_ascii_digit(Py_UCS4 c) noexcept nogil:   # [0-9]
    return 48 <= c <= 57


cdef inline bint is_address(Py_UCS4 c) noexcept nogil:   # [0-9A-Fa-f:.]
    return (48 <= c <= 58) or (65 <= c <= 70) or (97 <= c <= 102) or c == 46


cdef inline bint has(const char_t* s, Py_ssize_t n, Py_ssize_t i, const char* literal,
                     Py_ssize_t size) noexcept nogil:
    """Whether the ASCII ``literal`` (of ``size`` characters) is at ``i``."""
    cdef Py_ssize_t k
    if i + size > n:
        return False
    for k in range(size):
        if s[i + k] != <Py_UCS4><unsigned char>literal[k]:
            return False
    return True


cdef inline Py_ssize_t non_space_run(const char_t* s, Py_ssize_t n, Py_ssize_t i) noexcept nogil:
    """The end of the run of \\S characters from ``i``."""
    while i < n and not is_space(s[i]):
        i += 1
    return i


cdef inline bint space_at(const char_t* s, Py_ssize_t n, Py_ssize_t i) noexcept nogil:
    return i < n and s[i] == 32


cdef Py_ssize_t segment_end(object line) except -1:
    if not isinstance(line, str):
        raise TypeError(f"a line must be a str, not {type(line).__name__}")
    cdef Py_ssize_t length = PyUnicode_GET_LENGTH(line)
    cdef Py_ssize_t end = PyUnicode_FindChar(line, 10, 0, length, 1)
    return length if end == -1 else end


cdef inline void put(tuple row, Py_ssize_t index, object value) noexcept:
    Py_INCREF(value)
    PyTuple_SET_ITEM(row, index, value)


cdef class Recent:
    """The last value of each field that repeats from line to line (a stamp, a method, a
    host): an equal field of the next line is that same string, not a copy (no allocation,
    and its hash is already known to the dictionaries the parsers look it up in)."""
    cdef object a, b, c, d, e, f


cdef inline object field(object previous, object line, const char_t* s, Py_ssize_t start,
                         Py_ssize_t end):
    """``line[start:end]``: ``previous`` when equal to it, else a new string."""
    cdef Py_ssize_t size = end - start, k
    cdef int kind
    cdef void* data
    if previous is not None and PyUnicode_GET_LENGTH(previous) == size:
        kind = PyUnicode_KIND(previous)
        data = PyUnicode_DATA(previous)
        if kind == sizeof(char_t):
            if memcmp(data, s + start, size * sizeof(char_t)) == 0:
                return previous
        else:
            for k in range(size):
                if PyUnicode_READ(kind, data, k) != s[start + k]:
                    break
            else:
                return previous
    return PyUnicode_Substring(line, start, end)


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


cdef tuple light_row(object line, const char_t* s, Py_ssize_t n, Recent last):
    cdef Py_ssize_t i = 0, j, k, ts, te, ms, me, ps, pe, ss, bs
    cdef const Py_UCS1* found
    cdef Py_UCS4 c
    for k in range(3):   # \S+ \S+ \S+ (each then one space)
        j = non_space_run(s, n, i)
        if j == i or not space_at(s, n, j):
            return None
        i = j + 1
    if i >= n or s[i] != 91:   # [
        return None
    i += 1
    ts = i
    if char_t is Py_UCS1:   # ([^\]\n]+)\]
        found = <const Py_UCS1*>memchr(s + i, 93, n - i)
        i = n if found == NULL else found - s
    else:
        while i < n and s[i] != 93:
            i += 1
    if i == ts or i >= n:
        return None
    te = i
    if not has(s, n, i, b'] "', 3):
        return None
    i += 3
    ms = i
    while i < n and 65 <= s[i] <= 90:   # ([A-Z]+) then a space
        i += 1
    if i == ms or not space_at(s, n, i):
        return None
    me = i
    i += 1
    if i >= n or s[i] != 47:   # (/[^ "\\?\n]*)
        return None
    ps = i
    i += 1
    while i < n:
        c = s[i]
        if c == 32 or c == 34 or c == 92 or c == 63:
            break
        i += 1
    pe = i
    if i < n and s[i] == 63:   # (?:\?[^ "\\\n]*)?
        i += 1
        while i < n and quote_class(s[i]):
            i += 1
    if not space_at(s, n, i):
        return None
    i += 1
    j = i
    while i < n and quote_class(s[i]):   # [^ "\\\n]+" then a space
        i += 1
    if i == j or not has(s, n, i, b'" ', 2):
        return None
    i += 2
    if i + 3 > n:   # ([0-9]{3}) then a space
        return None
    ss = i
    for k in range(3):
        if not is_ascii_digit(s[i + k]):
            return None
    i += 3
    if not space_at(s, n, i):
        return None
    i += 1
    bs = i
    if i < n and is_ascii_digit(s[i]):   # ([0-9]{1,19}|-)(?![0-9])
        while i < n and is_ascii_digit(s[i]):
            i += 1
        if i - bs > 19:
            return None
    elif i < n and s[i] == 45:
        i += 1
        if i < n and is_ascii_digit(s[i]):
            return None
    else:
        return None
    last.a = field(last.a, line, s, ts, te)
    last.b = field(last.b, line, s, ms, me)
    last.c = field(last.c, line, s, ss, ss + 3)
    return (last.a, last.b, PyUnicode_Substring(line, ps, pe), last.c,
            PyUnicode_Substring(line, bs, i), EMPTY)


def light_fields(list lines not None) -> list:
    """``_block_matches(_LIGHT_LINE, lines)``: (time, method, path, status, bytes, other)
    for each line, ``other`` being the whole line when it is not of the usual shape."""
    return rows(lines, True)


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

cdef bint address_port(const char_t* s, Py_ssize_t n, Py_ssize_t i, Py_ssize_t* end) noexcept nogil:
    """Whether ``([0-9A-Fa-f:.]+) port \\d`` is at ``i``; ``end[0]``: the address's end."""
    cdef Py_ssize_t j = i
    while j < n and is_address(s[j]):
        j += 1
    if j == i or not has(s, n, j, b" port ", 6) or j + 6 >= n or not is_digit(s[j + 6]):
        return False
    end[0] = j
    return True


cdef bint lazy_user(const char_t* s, Py_ssize_t n, Py_ssize_t start, Py_ssize_t* user_end,
                    Py_ssize_t* address_end) noexcept nogil:
    """``(.*?) from ([0-9A-Fa-f:.]+) port \\d+`` from ``start``: the first user end."""
    cdef Py_ssize_t e = start
    while e + 6 <= n:
        if s[e] == 32 and has(s, n, e, b" from ", 6) and address_port(s, n, e + 6, address_end):
            user_end[0] = e
            return True
        e += 1
    return False


cdef tuple sshd_row(object line, const char_t* s, Py_ssize_t n, Recent last):
    cdef Py_ssize_t i, ds, de, hs, hos, hoe, q, p, j, k, us, ue, ws, we, a_end
    cdef Py_UCS4 c
    if n < 4:
        return None
    c = s[0]
    if not 65 <= c <= 90:
        return None
    for k in range(1, 3):
        c = s[k]
        if not 97 <= c <= 122:
            return None
    if s[3] != 32:
        return None
    i = 4
    if space_at(s, n, i):
        i += 1
    ds = i
    while i < n and i - ds < 2 and is_digit(s[i]):
        i += 1
    if i == ds or not space_at(s, n, i):
        return None
    de = i
    i += 1
    hs = i
    if i + 8 > n:
        return None
    for k in (0, 1, 3, 4, 6, 7):
        if not is_digit(s[i + k]):
            return None
    if s[i + 2] != 58 or s[i + 5] != 58:
        return None
    i += 8
    if not space_at(s, n, i):
        return None
    i += 1
    hos = i
    i = non_space_run(s, n, i)
    if i == hos or not has(s, n, i, b" sshd[", 6):
        return None
    hoe = i
    i += 6
    j = i
    while i < n and is_digit(s[i]):
        i += 1
    if i == j or not has(s, n, i, b"]: ", 3):
        return None
    q = i + 3
    cdef tuple row = PyTuple_New(11)
    cdef int k2
    if has(s, n, q, b"Failed", 6):
        if not space_at(s, n, q + 6):
            return None
        i = q + 7
        if has(s, n, i, b"password", 8):
            i += 8
        elif has(s, n, i, b"publickey", 9):
            i += 9
        elif has(s, n, i, b"keyboard-interactive/pam", 24):
            i += 24
        elif has(s, n, i, b"none", 4):
            i += 4
        elif has(s, n, i, b"hostbased", 9):
            i += 9
        else:
            return None
        if not has(s, n, i, b" for ", 5):
            return None
        p = i + 5
        if has(s, n, p, b"invalid user ", 13) and lazy_user(s, n, p + 13, &ue, &a_end):
            us = p + 13
            put(row, 4, INVALID_USER)
        elif lazy_user(s, n, p, &ue, &a_end):
            us = p
            put(row, 4, EMPTY)
        else:
            return None
        last.e = field(last.e, line, s, us, ue)
        put(row, 5, last.e)
        put(row, 6, PyUnicode_Substring(line, ue + 6, a_end))
        for k2 in range(7, 11):
            put(row, k2, EMPTY)
    elif has(s, n, q, b"Accepted", 8):
        if not space_at(s, n, q + 8):
            return None
        ws = q + 9
        we = non_space_run(s, n, ws)
        if we == ws or not has(s, n, we, b" for ", 5):
            return None
        us = we + 5
        ue = non_space_run(s, n, us)
        if ue == us or not has(s, n, ue, b" from ", 6) or not address_port(s, n, ue + 6, &a_end):
            return None
        for k2 in range(4, 7):
            put(row, k2, EMPTY)
        last.f = field(last.f, line, s, ws, we)
        put(row, 7, last.f)
        last.e = field(last.e, line, s, us, ue)
        put(row, 8, last.e)
        put(row, 9, PyUnicode_Substring(line, ue + 6, a_end))
        put(row, 10, EMPTY)
    elif has(s, n, q, b"Invalid", 7) or has(s, n, q, b"message repeated ", 17):
        return None
    else:
        for k2 in range(4, 10):
            put(row, k2, EMPTY)
        put(row, 10, PyUnicode_Substring(line, q, n))
    last.a = field(last.a, line, s, 0, 3)
    put(row, 0, last.a)
    last.b = field(last.b, line, s, ds, de)
    put(row, 1, last.b)
    last.c = field(last.c, line, s, hs, hs + 8)
    put(row, 2, last.c)
    last.d = field(last.d, line, s, hos, hoe)
    put(row, 3, last.d)
    return row


cdef tuple OTHER_SSHD = (EMPTY,) * 11


def sshd_fields(list lines not None) -> list:
    """``_block_matches(_SSHD_LINE, lines)``: (month, day, time, host, invalid, user,
    address, method, user, address, message) for each line; all ``''`` for a line that
    is not of the usual shape."""
    return rows(lines, False)


cdef list rows(list lines, bint light):
    """The row of each line: ``light_row`` (``light``) or ``sshd_row``, read at the width
    of the line's characters; the row of a line that is not of the usual shape."""
    cdef Py_ssize_t count = len(lines), index
    cdef list out = PyList_New(count)
    cdef Py_ssize_t n
    cdef int kind
    cdef void* data
    cdef object line, row
    cdef Recent last = Recent()
    for index in range(count):
        line = lines[index]
        n = segment_end(line)
        kind = PyUnicode_KIND(line)
        data = PyUnicode_DATA(line)
        if light:
            if kind == 1:
                row = light_row(line, <const Py_UCS1*>data, n, last)
            elif kind == 2:
                row = light_row(line, <const Py_UCS2*>data, n, last)
            else:
                row = light_row(line, <const Py_UCS4*>data, n, last)
            if row is None:
                row = (EMPTY, EMPTY, EMPTY, EMPTY, EMPTY, PyUnicode_Substring(line, 0, n))
        else:
            if kind == 1:
                row = sshd_row(line, <const Py_UCS1*>data, n, last)
            elif kind == 2:
                row = sshd_row(line, <const Py_UCS2*>data, n, last)
            else:
                row = sshd_row(line, <const Py_UCS4*>data, n, last)
            if row is None:
                row = OTHER_SSHD
        Py_INCREF(row)
        PyList_SET_ITEM(out, index, row)
    return out
