# cython: language_level=3, boundscheck=False, wraparound=False
"""Native reader of the usual-shape JSON lines of the anomaly engine.

``Reader(Event, LOGIN_ACTIONS, ERROR_LEVELS).events(lines, origin)`` gives, for each line
of a block, exactly the event that ``JsonLinesParser().parse(line)`` (the default field
names) gives, its origin set to ``origin``, or ``None`` for a line it leaves to that
parser; ``tests/anomaly/test_jsonl.py`` checks it against the parser (the oracle) line by
line.

A line is read here when it is one flat JSON object: ``{`` first, string keys without
escapes and each key once, values that are strings without escapes or control characters,
integers of at most 18 digits, other numbers, ``true``, ``false`` or ``null``, nothing but
JSON whitespace (space, tab, CR, LF) between the tokens and after the object, and no line
end (CR, LF) as its last character (``LineReader`` strips that before parsing). Its fields
must be of the types the parser takes as they are: ``ts`` a string of the form
``YYYY-MM-DDTHH:MM:SS``, then ``.fff`` or ``.ffffff`` or nothing, then ``Z``, ``+HH:MM``,
``-HH:MM`` or nothing (a year from 1900 to 2199), or an integer of at most 15 digits, or
another number; ``event`` a non-empty string; ``success`` and ``mfa`` ``true``, ``false``
or ``null``; ``status`` and ``bytes`` integers of at most 18 digits or ``null``; the other
named fields strings or ``null``. Any other line (a nested value, an escape, a duplicate
key, a time of another form, ``"yes"`` for a success, a malformed line, a blank one, ...)
is ``None``: the parser reads it, and it alone decides what such a line gives.

A number is read as ``json`` reads it (an integer as ``int``, any other number by
``float(text)``) and the time as ``datetime.fromisoformat(...).timestamp()`` computes it:
the microseconds since the epoch (under 2**53 in those years) divided by 10**6 in one
correctly rounded division.
"""

from libc.math cimport isfinite
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.object cimport PyTypeObject
from cpython.ref cimport PyObject, Py_INCREF
from libc.string cimport memcmp


cdef extern from "Python.h":
    ctypedef unsigned char Py_UCS1
    ctypedef unsigned short Py_UCS2
    int PyUnicode_KIND(object o)
    void* PyUnicode_DATA(object o)
    Py_UCS4 PyUnicode_READ(int kind, void* data, Py_ssize_t index) nogil
    Py_ssize_t PyUnicode_GET_LENGTH(object o)
    str PyUnicode_Substring(object s, Py_ssize_t start, Py_ssize_t end)
    object PyFloat_FromString(object s)
    double PyFloat_AS_DOUBLE(object o)
    void* PyType_GetSlot(PyTypeObject* type, int slot) except? NULL
    enum:
        Py_tp_alloc
        Py_tp_descr_set


ctypedef object (*allocfunc)(object, Py_ssize_t)
ctypedef int (*descrsetfunc)(PyObject*, object, object) except -1

ctypedef fused char_t:
    Py_UCS1
    Py_UCS2
    Py_UCS4


# The Event's fields, in order (a slots dataclass: each is a member descriptor).
FIELDS = ("ts", "action", "raw", "source", "origin", "success", "ip", "user", "host",
          "service", "method", "path", "status", "bytes", "role", "mfa", "level", "extra")

# The keys read, numbered (see key_id): the parser's default field names (0-13), then the
# two keys it reads the level from (14, 15), which stay in ``extra`` too.
cdef enum:
    K_TS = 0
    K_EVENT = 1
    K_IP = 2
    K_USER = 3
    K_SUCCESS = 4
    K_BYTES = 5
    K_FILE = 6
    K_ROLE = 7
    K_MFA = 8
    K_PATH = 9
    K_STATUS = 10
    K_METHOD = 11
    K_HOST = 12
    K_SERVICE = 13
    K_LEVEL = 14
    K_SEVERITY = 15
    N_KEYS = 16
    N_MAPPED = 14   # keys 0-13: the parser's fields; the others go to extra
    N_FIELDS = 18

# the kinds of values
cdef enum:
    T_STR = 1
    T_INT = 2
    T_FLOAT = 3
    T_TRUE = 4
    T_FALSE = 5
    T_NULL = 6

cdef enum:
    MAX_INT_DIGITS = 18   # an int of at most this many digits fits a long long (and MAX_BYTES)
    MAX_TS_DIGITS = 15    # an int of at most this many digits is exactly a float

cdef str JSON = "json"
cdef str LOGIN = "login"
cdef str ERROR = "error"
cdef object MISS = object()   # a value this reader leaves to the parser


cdef inline bint is_ws(Py_UCS4 c) noexcept nogil:   # JSON whitespace
    return c == 32 or c == 9 or c == 10 or c == 13


cdef inline bint is_digit(Py_UCS4 c) noexcept nogil:
    return 48 <= c <= 57


cdef inline Py_ssize_t skip_ws(const char_t* s, Py_ssize_t n, Py_ssize_t i) noexcept nogil:
    while i < n and is_ws(s[i]):
        i += 1
    return i


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


cdef inline Py_ssize_t string_end(const char_t* s, Py_ssize_t n, Py_ssize_t i) noexcept nogil:
    """The closing quote of a string whose characters start at ``i``; -1 when the string
    holds an escape or a control character (which ``json`` refuses) or does not end."""
    cdef Py_UCS4 c
    while i < n:
        c = s[i]
        if c == 34:
            return i
        if c == 92 or c < 32:
            return -1
        i += 1
    return -1


cdef inline Py_ssize_t number_end(const char_t* s, Py_ssize_t n, Py_ssize_t i,
                                  int* kind) noexcept nogil:
    """The end of the JSON number at ``i`` (``-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][-+]?[0-9]+)?``),
    ``kind``: T_INT or T_FLOAT; -1 when none is there. What follows is the caller's to
    check (a delimiter), as ``json`` does."""
    cdef bint is_float = False
    if s[i] == 45:   # -
        i += 1
        if i >= n:
            return -1
    if s[i] == 48:   # 0
        i += 1
    elif 49 <= s[i] <= 57:
        i += 1
        while i < n and is_digit(s[i]):
            i += 1
    else:
        return -1
    if i + 1 < n and s[i] == 46 and is_digit(s[i + 1]):   # .
        is_float = True
        i += 2
        while i < n and is_digit(s[i]):
            i += 1
    if i < n and (s[i] == 101 or s[i] == 69):   # e E
        if i + 1 < n and (s[i + 1] == 43 or s[i + 1] == 45):
            if i + 2 < n and is_digit(s[i + 2]):
                i += 3
            else:
                return -1   # json backs off to before the e: no delimiter there
        elif i + 1 < n and is_digit(s[i + 1]):
            i += 2
        else:
            return -1
        is_float = True
        while i < n and is_digit(s[i]):
            i += 1
    kind[0] = T_FLOAT if is_float else T_INT
    return i


cdef inline int key_id(const char_t* s, Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """The number of the key ``s[a:b]``, -1 for another key."""
    cdef Py_ssize_t size = b - a
    if size == 2:
        if has(s, b, a, b"ts", 2):
            return K_TS
        if has(s, b, a, b"ip", 2):
            return K_IP
    elif size == 3:
        if has(s, b, a, b"mfa", 3):
            return K_MFA
    elif size == 4:
        if has(s, b, a, b"user", 4):
            return K_USER
        if has(s, b, a, b"file", 4):
            return K_FILE
        if has(s, b, a, b"role", 4):
            return K_ROLE
        if has(s, b, a, b"path", 4):
            return K_PATH
        if has(s, b, a, b"host", 4):
            return K_HOST
    elif size == 5:
        if has(s, b, a, b"event", 5):
            return K_EVENT
        if has(s, b, a, b"bytes", 5):
            return K_BYTES
        if has(s, b, a, b"level", 5):
            return K_LEVEL
    elif size == 6:
        if has(s, b, a, b"status", 6):
            return K_STATUS
        if has(s, b, a, b"method", 6):
            return K_METHOD
    elif size == 7:
        if has(s, b, a, b"success", 7):
            return K_SUCCESS
        if has(s, b, a, b"service", 7):
            return K_SERVICE
    elif size == 8:
        if has(s, b, a, b"severity", 8):
            return K_SEVERITY
    return -1


cdef inline bint read_int(const char_t* s, Py_ssize_t a, Py_ssize_t b, int max_digits,
                          long long* out) noexcept nogil:
    """The JSON integer ``s[a:b]`` when it has at most ``max_digits`` digits."""
    cdef long long value = 0
    cdef bint negative = s[a] == 45
    if negative:
        a += 1
    if b - a > max_digits:
        return False
    while a < b:
        value = value * 10 + (<int>s[a] - 48)
        a += 1
    out[0] = -value if negative else value
    return True


cdef inline int two(const char_t* s, Py_ssize_t i) noexcept nogil:
    """The two ASCII digits at ``i`` as a number, -1 when they are not digits."""
    if not (is_digit(s[i]) and is_digit(s[i + 1])):
        return -1
    return (<int>s[i] - 48) * 10 + (<int>s[i + 1] - 48)


cdef inline long long days_from_civil(long long y, int m, int d) noexcept nogil:
    """Days from 1970-01-01 to a date of the proleptic Gregorian calendar."""
    y -= m <= 2
    cdef long long era = (y if y >= 0 else y - 399) // 400
    cdef long long yoe = y - era * 400
    cdef long long doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    cdef long long doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


cdef inline int days_in_month(int year, int month) noexcept nogil:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month == 4 or month == 6 or month == 9 or month == 11 else 31


cdef bint iso_ts(const char_t* s, Py_ssize_t a, Py_ssize_t b, double* out) noexcept nogil:
    """``_iso_ts(s[a:b])`` for the forms this reader takes (see the module's text)."""
    cdef int century, year, month, day, hour, minute, second, oh, om
    cdef long long micro = 0, offset = 0, us
    cdef Py_ssize_t i, f, k
    if b - a < 19:
        return False
    century, year = two(s, a), two(s, a + 2)
    month, day = two(s, a + 5), two(s, a + 8)
    hour, minute, second = two(s, a + 11), two(s, a + 14), two(s, a + 17)
    if (century < 19 or century > 21 or year < 0 or s[a + 4] != 45 or s[a + 7] != 45
            or s[a + 10] != 84 or s[a + 13] != 58 or s[a + 16] != 58):
        return False
    year += century * 100
    if not (1 <= month <= 12 and 0 <= hour <= 23 and 0 <= minute <= 59 and 0 <= second <= 59):
        return False
    if not 1 <= day <= days_in_month(year, month):
        return False
    i = a + 19
    if i < b and s[i] == 46:   # .fff or .ffffff
        f = i + 1
        while f < b and is_digit(s[f]):
            f += 1
        if f - i - 1 != 3 and f - i - 1 != 6:
            return False
        for k in range(i + 1, f):
            micro = micro * 10 + (<int>s[k] - 48)
        if f - i - 1 == 3:
            micro *= 1000
        i = f
    if i == b:
        pass   # no zone: UTC
    elif s[i] == 90:   # Z
        if i + 1 != b:
            return False
    elif s[i] == 43 or s[i] == 45:   # +HH:MM -HH:MM
        if i + 6 != b or s[i + 3] != 58:
            return False
        oh, om = two(s, i + 1), two(s, i + 4)
        if not (0 <= oh <= 23 and 0 <= om <= 59):
            return False
        offset = oh * 3600 + om * 60
        if s[i] == 45:
            offset = -offset
    else:
        return False
    us = ((days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
           - offset) * 1000000 + micro)
    out[0] = <double>us / 1000000.0
    return True


cdef enum:
    WAYS = 4   # strings kept per key


cdef class Recent:
    """The last few strings of each key in a block (users, event names, a service): an
    equal value on a later line is that same string, not a copy; and the action of each
    event name kept."""
    cdef list last      # WAYS strings (or None) per key
    cdef list actions   # the action of each event name kept (K_EVENT's entries)
    cdef int next[N_KEYS]

    def __cinit__(self):
        self.last = [None] * (N_KEYS * WAYS)
        self.actions = [None] * (N_KEYS * WAYS)
        for k in range(N_KEYS):
            self.next[k] = 0


cdef inline bint same(object text, const char_t* s, Py_ssize_t start, Py_ssize_t size) noexcept:
    """Whether the string ``text`` is ``s[start:start + size]``."""
    cdef Py_ssize_t k
    cdef int kind
    cdef void* data
    if PyUnicode_GET_LENGTH(text) != size:
        return False
    kind = PyUnicode_KIND(text)
    data = PyUnicode_DATA(text)
    if kind == sizeof(char_t):
        return memcmp(data, s + start, size * sizeof(char_t)) == 0
    for k in range(size):
        if PyUnicode_READ(kind, data, k) != s[start + k]:
            return False
    return True


cdef inline Py_ssize_t text(Recent recent, int key, object line, const char_t* s,
                            Py_ssize_t start, Py_ssize_t end) except -1:
    """The entry of ``recent.last`` holding ``line[start:end]``: a string of the key kept
    equal to it, else a new string put in place of the key's oldest."""
    cdef Py_ssize_t base = key * WAYS, w
    cdef list last = recent.last
    cdef object kept
    for w in range(base, base + WAYS):
        kept = last[w]
        if kept is None:
            break
        if same(kept, s, start, end - start):
            return w
    w = base + recent.next[key]
    recent.next[key] = (recent.next[key] + 1) % WAYS
    last[w] = PyUnicode_Substring(line, start, end)
    recent.actions[w] = None
    return w


cdef object value_of(object line, const char_t* s, int kind, Py_ssize_t start,
                     Py_ssize_t end):
    """The value ``json`` reads (MISS for an integer of more digits than read here)."""
    cdef long long number
    if kind == T_STR:
        return PyUnicode_Substring(line, start, end)
    if kind == T_INT:
        if read_int(s, start, end, MAX_INT_DIGITS, &number):
            return number
        return MISS
    if kind == T_FLOAT:
        return PyFloat_FromString(PyUnicode_Substring(line, start, end))
    if kind == T_TRUE:
        return True
    if kind == T_FALSE:
        return False
    return None


cdef inline unsigned int bit(int key) noexcept nogil:
    return (<unsigned int>1) << key


cdef inline object flag(unsigned int seen, const int* kinds, int key):
    """A ``success`` or ``mfa`` (true, false or null: checked)."""
    if not seen & bit(key) or kinds[key] == T_NULL:
        return None
    return kinds[key] == T_TRUE


cdef inline object string(Recent recent, unsigned int seen, const int* kinds,
                          const Py_ssize_t* start, const Py_ssize_t* end, int key, object line,
                          const char_t* s):
    """A named string field (a string or null: checked)."""
    if not seen & bit(key) or kinds[key] == T_NULL:
        return None
    return recent.last[text(recent, key, line, s, start[key], end[key])]


cdef inline object integer(unsigned int seen, const int* kinds, const Py_ssize_t* start,
                           const Py_ssize_t* end, int key, const char_t* s):
    """``status`` or ``bytes`` (an integer of at most MAX_INT_DIGITS digits or null:
    checked)."""
    cdef long long number = 0
    if not seen & bit(key) or kinds[key] == T_NULL:
        return None
    read_int(s, start[key], end[key], MAX_INT_DIGITS, &number)
    return number


cdef class Reader:
    """Reads the usual-shape JSON lines of a block into events (see the module's text).
    ``read``: how many lines it has read into events."""

    cdef readonly Py_ssize_t read
    cdef object event_type
    cdef frozenset login_actions, error_levels
    cdef tuple descriptors
    cdef PyObject* descriptor[N_FIELDS]
    cdef descrsetfunc put
    cdef allocfunc alloc

    def __init__(self, event_type, login_actions, error_levels):
        if tuple(getattr(event_type, "__dataclass_fields__", ())) != FIELDS:
            raise TypeError(f"the event type's fields are not {FIELDS}")
        if tuple(getattr(event_type, "__slots__", ())) != FIELDS:
            raise TypeError("the event type is not a slots dataclass")
        if hasattr(event_type, "__post_init__") or event_type.__new__ is not object.__new__:
            raise TypeError("the event type does more than store its fields")
        self.event_type = event_type
        self.login_actions = frozenset(login_actions)
        self.error_levels = frozenset(error_levels)
        self.descriptors = tuple(event_type.__dict__[name] for name in FIELDS)
        if {type(d).__name__ for d in self.descriptors} != {"member_descriptor"}:
            raise TypeError("the event type's fields are not slots")
        for k in range(N_FIELDS):
            self.descriptor[k] = <PyObject*>self.descriptors[k]
        # the slots' own setter and the type's own allocator, as the event type's
        # __init__ and object.__new__ use them
        member_type = type(self.descriptors[0])
        self.put = <descrsetfunc>PyType_GetSlot(<PyTypeObject*>member_type, Py_tp_descr_set)
        self.alloc = <allocfunc>PyType_GetSlot(<PyTypeObject*>event_type, Py_tp_alloc)
        if self.put == NULL or self.alloc == NULL:
            raise TypeError("the event type's slots cannot be set")

    def events(self, list lines not None, str origin not None) -> tuple:
        """``(found, left)``: for each line its event or ``None`` (a line left to the
        parser), and the number of ``None``."""
        cdef Py_ssize_t count = len(lines), index, n, left = 0
        cdef list out = PyList_New(count)
        cdef int kind
        cdef void* data
        cdef object line, event
        cdef Recent recent = Recent()
        for index in range(count):
            line = lines[index]
            if not isinstance(line, str):
                raise TypeError(f"a line must be a str, not {type(line).__name__}")
            n = PyUnicode_GET_LENGTH(line)
            kind = PyUnicode_KIND(line)
            data = PyUnicode_DATA(line)
            if kind == 1:
                event = line_event(self, line, <const Py_UCS1*>data, n, origin, recent)
            elif kind == 2:
                event = line_event(self, line, <const Py_UCS2*>data, n, origin, recent)
            else:
                event = line_event(self, line, <const Py_UCS4*>data, n, origin, recent)
            if event is None:
                left += 1
            Py_INCREF(event)
            PyList_SET_ITEM(out, index, event)
        self.read += count - left
        return out, left


cdef object line_event(Reader self, object line, const char_t* s, Py_ssize_t n,
                       object origin, Recent recent):
    """The event of one line, or None (see the module's text)."""
    cdef Py_ssize_t start[N_KEYS]
    cdef Py_ssize_t end[N_KEYS]
    cdef int kinds[N_KEYS]
    cdef unsigned int seen = 0
    cdef Py_ssize_t i, ks, ke, vs, ve
    cdef int key, vkind = 0
    cdef Py_UCS4 c
    cdef dict extra = None
    cdef object name, value, action, level = None, severity = None
    cdef Py_ssize_t w
    cdef double ts
    cdef long long number = 0
    if n < 2 or s[0] != 123 or s[n - 1] == 10 or s[n - 1] == 13:   # {, and no line end
        return None
    i = skip_ws(s, n, 1)
    while True:   # "key": value, then , or }
        if i >= n or s[i] != 34:   # (an empty object has no time)
            return None
        ks = i + 1
        ke = string_end(s, n, ks)
        if ke < 0:
            return None
        i = skip_ws(s, n, ke + 1)
        if i >= n or s[i] != 58:   # :
            return None
        i = skip_ws(s, n, i + 1)
        if i >= n:
            return None
        c = s[i]
        if c == 34:   # "
            vs = i + 1
            ve = string_end(s, n, vs)
            if ve < 0:
                return None
            vkind = T_STR
            i = ve + 1
        elif c == 116:   # t
            if not has(s, n, i, b"true", 4):
                return None
            vs, ve, vkind = i, i + 4, T_TRUE
            i = ve
        elif c == 102:   # f
            if not has(s, n, i, b"false", 5):
                return None
            vs, ve, vkind = i, i + 5, T_FALSE
            i = ve
        elif c == 110:   # n
            if not has(s, n, i, b"null", 4):
                return None
            vs, ve, vkind = i, i + 4, T_NULL
            i = ve
        elif c == 45 or is_digit(c):
            vs = i
            ve = number_end(s, n, i, &vkind)
            if ve < 0:
                return None
            i = ve
        else:   # an object, an array, NaN, Infinity, or not JSON
            return None
        key = key_id(s, ks, ke)
        if key >= 0:
            if seen & bit(key):
                return None
            seen |= bit(key)
            start[key] = vs
            end[key] = ve
            kinds[key] = vkind
        if key < 0 or key >= N_MAPPED:   # a key of extra
            name = PyUnicode_Substring(line, ks, ke)
            if extra is None:
                extra = {}
            elif name in extra:
                return None
            value = value_of(line, s, vkind, vs, ve)
            if value is MISS:
                return None
            extra[name] = value
            if key == K_LEVEL:
                level = value
            elif key == K_SEVERITY:
                severity = value
        i = skip_ws(s, n, i)
        if i >= n:
            return None
        if s[i] == 44:   # ,
            i = skip_ws(s, n, i + 1)
        elif s[i] == 125:   # }
            break
        else:
            return None
    i = skip_ws(s, n, i + 1)
    if i != n:
        return None

    # the fields, as JsonLinesParser.parse reads them
    if not seen & bit(K_TS):
        return None
    vkind = kinds[K_TS]
    if vkind == T_STR:
        if not iso_ts(s, start[K_TS], end[K_TS], &ts):
            return None
    elif vkind == T_INT:
        if not read_int(s, start[K_TS], end[K_TS], MAX_TS_DIGITS, &number):
            return None
        ts = <double>number
    elif vkind == T_FLOAT:
        ts = PyFloat_AS_DOUBLE(PyFloat_FromString(PyUnicode_Substring(
            line, start[K_TS], end[K_TS])))
        if not isfinite(ts):   # (the parser's: a bad timestamp)
            return None
    else:
        return None
    if not seen & bit(K_EVENT) or kinds[K_EVENT] != T_STR or start[K_EVENT] == end[K_EVENT]:
        return None
    for key in range(N_MAPPED):
        if not seen & bit(key):
            continue
        vkind = kinds[key]
        if key == K_SUCCESS or key == K_MFA:
            if vkind != T_TRUE and vkind != T_FALSE and vkind != T_NULL:
                return None
        elif key == K_STATUS or key == K_BYTES:
            if vkind != T_NULL and (vkind != T_INT or not read_int(
                    s, start[key], end[key], MAX_INT_DIGITS, &number)):
                return None
        elif key == K_FILE:
            if vkind != T_NULL:
                value = value_of(line, s, vkind, start[key], end[key])
                if value is MISS:
                    return None
        elif key != K_TS and key != K_EVENT:   # ip, user, host, service, method, path, role
            if vkind != T_STR and vkind != T_NULL:
                return None
    if extra is None:
        extra = {}
    if seen & bit(K_FILE) and kinds[K_FILE] != T_NULL:
        extra["file"] = value   # (read above)
    if not seen & bit(K_LEVEL):
        level = severity
    level = ERROR if isinstance(level, str) and level.lower() in self.error_levels else None
    w = text(recent, K_EVENT, line, s, start[K_EVENT], end[K_EVENT])
    action = recent.actions[w]
    if action is None:   # a name new in the block
        name = recent.last[w]
        action = LOGIN if name.lower() in self.login_actions else name
        recent.actions[w] = action

    cdef object event = self.alloc(self.event_type, 0)
    cdef descrsetfunc put = self.put
    cdef PyObject** d = self.descriptor
    put(d[0], event, ts)
    put(d[1], event, action)
    put(d[2], event, line)
    put(d[3], event, JSON)
    put(d[4], event, origin)
    put(d[5], event, flag(seen, kinds, K_SUCCESS))
    put(d[6], event, string(recent, seen, kinds, start, end, K_IP, line, s))
    put(d[7], event, string(recent, seen, kinds, start, end, K_USER, line, s))
    put(d[8], event, string(recent, seen, kinds, start, end, K_HOST, line, s))
    put(d[9], event, string(recent, seen, kinds, start, end, K_SERVICE, line, s))
    put(d[10], event, string(recent, seen, kinds, start, end, K_METHOD, line, s))
    put(d[11], event, string(recent, seen, kinds, start, end, K_PATH, line, s))
    put(d[12], event, integer(seen, kinds, start, end, K_STATUS, s))
    put(d[13], event, integer(seen, kinds, start, end, K_BYTES, s))
    put(d[14], event, string(recent, seen, kinds, start, end, K_ROLE, line, s))
    put(d[15], event, flag(seen, kinds, K_MFA))
    put(d[16], event, level)
    put(d[17], event, extra)
    return event
