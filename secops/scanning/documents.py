"""Document checks: PDF actions, OLE/VBA macros, encrypted documents, polyglots.

PDF names may be written with ``#xx`` hex escapes (``/J#61vaScript``) precisely to
dodge byte-pattern scanners, so names are matched in any mix of plain and escaped
characters. Macro analysis uses oletools' olevba, which understands OLE files and
``vbaProject.bin`` streams alike; its import is deferred because it costs about 0.2 s
and most files are not OLE.

Compressed PDF object streams. Since PDF 1.5 any object that is not itself a stream can
be stored in an object stream, usually Flate-compressed; that is the standard way to hide
a JavaScript, OpenAction, Launch or EmbeddedFile dictionary from a byte scanner. So each
object stream is inflated and gets the same name detection as the raw bytes, with the
same finding ids (the description adds "in a compressed object stream"; an id found in
the raw bytes is not repeated). What is inflated, and why:

* Only object streams: a stream whose dictionary (``#xx`` decoded) has ``/ObjStm`` or
  ``/First`` (pdf.js finds objects by ``/First`` and ``/N`` without checking ``/Type``).
  Action and embedding dictionaries can only be in the file body or in object streams.
  Page content, fonts, images and embedded-file data are data, not objects: inflating
  them would cost time on every large benign PDF (page content is most of a text PDF)
  and turn the random bytes of compressed fonts and images into false name matches.
  Streams are found by one regex pass for ``>>`` then ``stream`` (literal prefix, about
  as fast as ``bytes.find``); each dictionary is read back to its ``obj`` keyword, at
  most 64 KiB back and, in all, about the file's size. A PDF without object streams
  costs that one pass and no inflation.
* Filters: ``/FlateDecode``, also abbreviated ``/Fl`` or in a one-element array. An object
  stream with any other filter or chain (``/LZWDecode``, ``[/ASCII85Decode /FlateDecode]``,
  an indirect ``/Filter``) or with a ``/Predictor`` is not decoded, and is reported as
  ``pdf.limit``. An unfiltered one is plain text in the raw bytes, already checked.
* The body ends at ``/Length`` when that is a direct integer followed by ``endstream``.
  Otherwise (an indirect ``12 0 R``, a wrong or missing length) at the next
  ``endstream``, and, while the zlib data has not ended (stored deflate blocks may
  contain that word), at the following one.
* The zlib header must be valid; the Adler-32 checksum at the end is not checked, as
  lenient readers do not check it either (a broken one must not hide a stream). A stream
  that fails to inflate (corrupt, or encrypted: ``document.encrypted`` covers those) is
  skipped; what its data before the failing 16 KiB produced is still checked.
* Limits, enforced while inflating: every ``decompressobj().decompress`` call gets a
  ``max_length``, so no output is produced past a cap: ``PDF_MAX_STREAM_BYTES`` (8 MiB)
  per stream, ``PDF_MAX_TOTAL_BYTES`` (64 MiB) per PDF, at most
  ``PDF_MAX_OBJECT_STREAMS`` (2000) streams, and compressed input no more than twice
  the PDF's size. Reaching one, an undecoded stream, or a dictionary that cannot be
  read back adds one ``pdf.limit`` of severity medium, like ``archive.limit.*``: a file
  not fully inspected must not pass as clean (padding before the payload, or a filter
  this module skips, would otherwise be an evasion), and benign PDFs are far below
  these limits (object streams hold only the small objects).
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import re
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from secops.scanning import pdfopen, search
from secops.scanning.filetype import is_pdf_or_image
from secops.scanning.models import Finding, Severity
from secops.scanning.ziparchive import ZipFormatError, find_eocd, read_directory

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
PDF_ACTIONS: dict[bytes, tuple[str, Severity, str]] = {
    b"JavaScript": ("pdf.javascript", Severity.MEDIUM, "PDF contains JavaScript"),
    b"JS": ("pdf.javascript", Severity.MEDIUM, "PDF contains JavaScript"),
    b"OpenAction": ("pdf.open_action", Severity.MEDIUM, "PDF runs an action when opened"),
    b"AA": ("pdf.additional_actions", Severity.MEDIUM, "PDF has automatic (AA) actions"),
    b"Launch": ("pdf.launch", Severity.HIGH, "PDF can launch an external program"),
    b"EmbeddedFile": ("pdf.embedded_file", Severity.MEDIUM, "PDF carries an embedded file"),
    b"EmbeddedFiles": ("pdf.embedded_file", Severity.MEDIUM, "PDF carries an embedded file"),
    b"RichMedia": ("pdf.rich_media", Severity.MEDIUM, "PDF embeds rich media (Flash)"),
    b"XFA": ("pdf.xfa", Severity.LOW, "PDF contains an XFA form"),
}
_DANGEROUS_CALLS = ("shell", "wscript", "urldownloadtofile", "powershell", "createobject",
                    "run", "exec", "xmlhttp", "adodb.stream", "callbyname", "createprocess")

_MIB = 1 << 20
PDF_MAX_STREAM_BYTES = 8 * _MIB
PDF_MAX_TOTAL_BYTES = 64 * _MIB
PDF_MAX_OBJECT_STREAMS = 2000
_IN_STREAM = " (in a compressed object stream)"

logging.getLogger("olevba").setLevel(logging.CRITICAL)


def is_pdf(data: bytes) -> bool:
    return b"%PDF-" in data[:1024]


# -- names ------------------------------------------------------------------------------

_WATCHED: tuple[bytes, ...] = (*PDF_ACTIONS, b"Encrypt")
_NEW, _PLAIN_SEEN, _DONE = 0, 1, 2
# A name ends where the next character could not continue it (delimiter, whitespace).
_NAME_END = r"(?![A-Za-z0-9_.+\-]|#[0-9A-Fa-f]{2})"
# Just after a name's "/": the name has a #xx escape (plain characters, then one).
_HAS_ESCAPE = r"(?=[A-Za-z0-9_.+\-]*#[0-9A-Fa-f]{2})"
# First character of any watched name, or an escape: lets the regex skip other names
# after one test (measured: as fast as the single pass this module used before).
_FIRST = "(?=[" + "".join(sorted({chr(name[0]) for name in _WATCHED})) + "#])"


def _spelled(name: bytes) -> str:
    """A regex for ``name`` with any of its characters possibly written ``#xx``."""
    def digit(d: str) -> str:
        return d if d.isdigit() else f"[{d}{d.upper()}]"

    return "".join(f"(?:{re.escape(chr(b))}|#{digit(f'{b:02x}'[0])}{digit(f'{b:02x}'[1])})"
                   for b in name)


_SPELLED = tuple(_spelled(name) for name in _WATCHED)


@functools.lru_cache(maxsize=256)
def _names_pattern(states: tuple[int, ...]) -> re.Pattern[bytes] | None:
    """The watched names still worth finding: unseen ones in any spelling, and ones seen
    only plain in a spelling with an escape. ``None`` when nothing is left to learn."""
    new = [f"(?P<n{i}>{_SPELLED[i]})" for i, state in enumerate(states) if state == _NEW]
    escaped = [f"(?P<n{i}>{_SPELLED[i]})" for i, state in enumerate(states)
               if state == _PLAIN_SEEN]
    branches = ["|".join(new)] if new else []
    if escaped:
        branches.append(f"{_HAS_ESCAPE}(?:{'|'.join(escaped)})")
    if not branches:
        return None
    return re.compile(f"/{_FIRST}(?:{'|'.join(branches)}){_NAME_END}".encode())


class _NameScan:
    """Which watched names a PDF uses, and which of them with ``#xx`` escapes.

    The same answer as tokenising every name, decoding its escapes and looking it up,
    but a name once known leaves the pattern, so a file repeating one name millions of
    times (cheap to make with a compressed stream) costs a regex pass, not millions of
    Python steps: ``scan`` runs at most ``2 * len(_WATCHED) + 1`` searches.
    """

    def __init__(self) -> None:
        self.states = [_NEW] * len(_WATCHED)

    @property
    def complete(self) -> bool:
        return all(state == _DONE for state in self.states)

    def scan(self, data: bytes | bytearray) -> list[tuple[bytes, bool]]:
        """``(name, escaped)`` for each name newly seen in ``data`` in that spelling."""
        found: list[tuple[bytes, bool]] = []
        pos = 0
        while (pattern := _names_pattern(tuple(self.states))) is not None:
            match = pattern.search(data, pos)
            if match is None or match.lastgroup is None:
                break
            index = int(match.lastgroup[1:])
            name, escaped = _WATCHED[index], b"#" in match.group()
            self.states[index] = _DONE if escaped or name == b"Encrypt" else _PLAIN_SEEN
            found.append((name, escaped))
            pos = match.end()
        return found


# -- object streams ---------------------------------------------------------------------

_WHITESPACE = b"\x00\t\n\x0c\r "
_DICT_WINDOW = 64 * 1024  # how far back from "stream" the object's dictionary may start
_IN_CHUNK = 16 * 1024  # compressed bytes per decompress call (output of a failing one is lost)
_OUT_STEP = _MIB  # output bytes per decompress call, below the caps
_HEX = re.compile(rb"#([0-9A-Fa-f]{2})")
# The keyword after a dictionary: one regex pass with a literal prefix, measured as fast
# as a bytes.find loop, that never stops at "endstream" or at "stream" in text.
_STREAM_KEYWORD = re.compile(rb">>[\x00\t\n\x0c\r ]{0,32}stream")
_OBJECT_STREAM = re.compile(rb"/(?:ObjStm|First)(?![A-Za-z0-9_.+\-])")
_FILTER = re.compile(rb"/Filter\s*(\[[^\]]*\]|/[A-Za-z0-9_.+\-]+|\d+\s+\d+\s+R)")
_FILTER_NAME = re.compile(rb"/([A-Za-z0-9_.+\-]+)")
_FLATE = (b"FlateDecode", b"Fl")
_PREDICTOR = re.compile(rb"/Predictor\s*(\d+)")
_LENGTH = re.compile(rb"/Length\s+(\d+)(\s+\d+\s+R)?")


@dataclass
class _StreamBudget:
    """What is left of the per-PDF limits, and why inspection was incomplete."""

    input_left: int
    lookback_left: int  # bytes rfind may still scan back for "obj"
    # The last search for "endstream": (searched from, found at or -1). Streams come in
    # file order, so the answer holds for any later start up to it: one pass in all.
    endstream: tuple[int, int] = (-1, -1)
    output_left: int = field(default_factory=lambda: PDF_MAX_TOTAL_BYTES)
    streams_left: int = field(default_factory=lambda: PDF_MAX_OBJECT_STREAMS)
    gaps: list[str] = field(default_factory=list)

    def gap(self, reason: str) -> None:
        if reason not in self.gaps:
            self.gaps.append(reason)


def _object_stream_bodies(data: bytes, budget: _StreamBudget,
                          names: _NameScan) -> Iterator[bytearray]:
    """Yield the inflated body of each Flate object stream, within ``budget``."""
    view = memoryview(data)
    pos = 0
    while not names.complete and (match := _STREAM_KEYWORD.search(data, pos)) is not None:
        keyword, pos = match.start() + 2, match.end()
        head = _stream_dictionary(data, keyword, budget)
        if head is None:
            return
        if b"#" in head:
            head = _HEX.sub(lambda m: bytes([int(m.group(1), 16)]), head)
        if not _OBJECT_STREAM.search(head):
            continue
        undecoded = _undecoded_filter(head)
        if undecoded == "":
            continue  # unfiltered: the objects are in the raw bytes, already checked
        if undecoded is not None:
            budget.gap(f"filter {undecoded} not decoded")
            continue
        if budget.streams_left <= 0:
            budget.gap(f"more than {PDF_MAX_OBJECT_STREAMS} object streams")
            return
        if budget.output_left <= 0:
            budget.gap(f"more than {PDF_MAX_TOTAL_BYTES // _MIB} MiB inflated in all")
            return
        budget.streams_left -= 1
        start, end, exact = _stream_extent(data, match.end(), head, budget)
        limit = min(PDF_MAX_STREAM_BYTES, budget.output_left)
        body, fed, capped = _inflate(data, view, start, end, exact, limit, budget.input_left)
        budget.input_left -= fed
        budget.output_left -= min(len(body), limit)
        if capped:
            if budget.input_left <= 0:
                budget.gap("compressed input over twice the file's size")
            elif limit < PDF_MAX_STREAM_BYTES:
                budget.gap(f"more than {PDF_MAX_TOTAL_BYTES // _MIB} MiB inflated in all")
            else:
                budget.gap(f"a stream inflates to more than {PDF_MAX_STREAM_BYTES // _MIB} MiB")
        if exact:
            pos = max(pos, end)
        if body:
            yield body
        del body


def _stream_dictionary(data: bytes, keyword: int, budget: _StreamBudget) -> bytes | None:
    """The bytes from the object's ``obj`` to its ``stream`` keyword (its dictionary).

    Each look back is charged to the budget, so a file of ``>>stream`` repeated cannot
    make the rfind calls quadratic; ``None`` when the budget is spent.
    """
    if budget.lookback_left <= 0:
        budget.gap("stream dictionaries took too long to locate")
        return None
    window = min(_DICT_WINDOW, keyword, budget.lookback_left)
    opening = data.rfind(b"obj", keyword - window, keyword)
    if opening >= 0:
        budget.lookback_left -= keyword - opening
        return data[opening + 3:keyword]
    budget.lookback_left -= window
    if window < min(_DICT_WINDOW, keyword):
        budget.gap("stream dictionaries took too long to locate")
    elif window == _DICT_WINDOW:
        budget.gap(f"a stream dictionary is longer than {_DICT_WINDOW // 1024} KiB")
    return data[keyword - window:keyword]


def _undecoded_filter(head: bytes) -> str | None:
    """``None`` for a Flate stream this module inflates, ``""`` for an unfiltered one,
    else the filter (or parameter) that keeps it from being decoded."""
    match = _FILTER.search(head)
    if match is None:
        return ""
    value = match.group(1)
    if value[:1].isdigit():
        return "(indirect)"
    filters = _FILTER_NAME.findall(value)
    if not filters:
        return ""
    if len(filters) > 1 or filters[0] not in _FLATE:
        return " ".join(f"/{name.decode('latin-1')}" for name in filters)[:80]
    predictor = _PREDICTOR.search(head)
    if predictor is not None and int(predictor.group(1)) > 1:
        return f"/Predictor {int(predictor.group(1))}"
    return None


def _stream_extent(data: bytes, after_keyword: int, head: bytes,
                   budget: _StreamBudget) -> tuple[int, int, bool]:
    """``(start, end, exact)`` of a stream's body; exact when ``/Length`` was verified,
    else up to the next ``endstream`` (or the end of the file)."""
    start = after_keyword
    if data[start:start + 2] == b"\r\n":
        start += 2
    elif data[start:start + 1] in (b"\n", b"\r"):
        start += 1
    length = _LENGTH.search(head)
    if length is not None and length.group(2) is None:
        end = start + int(length.group(1))
        if end <= len(data) and data[end:end + 64].lstrip(_WHITESPACE).startswith(b"endstream"):
            return start, end, True
    searched, found = budget.endstream
    if not searched <= start <= (found if found >= 0 else len(data)):
        found = data.find(b"endstream", start)
        budget.endstream = (start, found)
    return start, (len(data) if found < 0 else found), False


def _zlib_header(header: bytes) -> bool:
    """Deflate method, window up to 32 KiB, check bits right, no preset dictionary."""
    if len(header) < 2:
        return False
    cmf, flg = header
    return cmf & 0x0F == 8 and cmf >> 4 <= 7 and (cmf << 8 | flg) % 31 == 0 and not flg & 0x20


def _inflate(data: bytes, view: memoryview, start: int, end: int, exact: bool,
             limit: int, input_left: int) -> tuple[bytearray, int, bool]:
    """Inflate ``data[start:end]``: ``(output, compressed bytes fed, capped)``.

    Output stops after ``limit + 1`` bytes (the extra byte proves there was more), input
    after ``input_left``. When ``end`` was only the next ``endstream`` and the zlib data
    goes on, the body is extended to the following one. On a zlib error the output so far
    is returned (it is as trustworthy as the bytes a lenient reader would show).
    """
    while start < end and data[start] in _WHITESPACE:
        start += 1  # a zlib header never starts with whitespace; lenient writers add some
    if not _zlib_header(data[start:start + 2]):
        return bytearray(), 0, False
    start += 2
    # Raw deflate after the checked header: the trailing Adler-32 is left unread.
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    out = bytearray()
    fed = 0
    pos = start
    while not inflater.eof:
        if pos >= end:
            if exact or end >= len(data):
                break
            following = data.find(b"endstream", end + 1)
            end = len(data) if following < 0 else following
            continue
        if fed >= input_left:
            return out, fed, True
        chunk: bytes | memoryview = view[pos:min(pos + _IN_CHUNK, end, pos + input_left - fed)]
        pos += len(chunk)
        fed += len(chunk)
        while True:
            want = min(limit + 1 - len(out), _OUT_STEP)
            try:
                piece = inflater.decompress(chunk, want)
            except zlib.error:
                return out, fed, False
            out += piece
            if len(out) > limit:
                return out, fed, True
            chunk = inflater.unconsumed_tail
            # A full piece may leave output pending inside zlib even with no input left.
            if inflater.eof or (not chunk and len(piece) < want):
                break
    return out, fed, False


# -- findings ---------------------------------------------------------------------------


def pdf_findings(data: bytes, location: str | None) -> list[Finding]:
    """Action and embedding names in the PDF's bytes and in its Flate object streams."""
    names = _NameScan()
    seen = [(name, escaped, False) for name, escaped in names.scan(data)]
    budget = _StreamBudget(input_left=2 * len(data), lookback_left=len(data) + _DICT_WINDOW)
    opens = pdfopen.OpenActions()
    opens.feed_body(data)
    for body in _object_stream_bodies(data, budget, names):
        seen.extend((name, escaped, True) for name, escaped in names.scan(body))
        opens.feed_stream(body)
        del body  # before the next stream is inflated: one body in memory at a time
    findings: dict[str, Finding] = {}
    escaped_names: dict[str, bool] = {}  # decoded name -> seen escaped only in a stream
    encrypted: bool | None = None  # None: no /Encrypt; else whether only in a stream
    for name, escaped, compressed in seen:
        if name == b"Encrypt":
            encrypted = compressed  # seen once: any spelling of /Encrypt settles it
            continue
        fid, severity, text = PDF_ACTIONS[name]
        if fid not in findings:
            findings[fid] = (opens.finding(location, _IN_STREAM if compressed else "")
                             if fid == "pdf.open_action" else
                             Finding(fid, severity, text + (_IN_STREAM if compressed else ""),
                                     location))
        if escaped:
            escaped_names[name.decode()] = compressed
    result = list(findings.values())
    if escaped_names:
        listed = ", /".join(sorted(escaped_names))
        hidden = sorted(name for name, compressed in escaped_names.items() if compressed)
        where = ""
        if hidden:
            where = _IN_STREAM if len(hidden) == len(escaped_names) \
                else f" (/{', /'.join(hidden)} in a compressed object stream)"
        result.append(Finding("pdf.obfuscated_name", Severity.HIGH,
                              f"PDF hides names with hex escapes: /{listed}{where}", location))
    if encrypted is not None:
        result.append(Finding("document.encrypted", Severity.MEDIUM,
                              "PDF is encrypted; its content cannot be fully scanned"
                              + (_IN_STREAM if encrypted else ""), location))
    if budget.gaps:
        result.append(Finding("pdf.limit", Severity.MEDIUM,
                              "not all compressed PDF object streams were inspected: "
                              + "; ".join(budget.gaps), location))
    return result


def is_ole(data: bytes) -> bool:
    return data[:8] == OLE_MAGIC


def ole_findings(data: bytes, name: str, location: str | None,
                 fatal: tuple[type[BaseException], ...] = ()) -> list[Finding]:
    """Encryption (msoffcrypto) and VBA macro analysis (olevba) of an OLE file; ``fatal``
    exceptions (the caller's time limit) propagate instead of becoming findings."""
    findings: list[Finding] = []
    try:
        import msoffcrypto

        if msoffcrypto.OfficeFile(io.BytesIO(data)).is_encrypted():
            findings.append(Finding("document.encrypted", Severity.MEDIUM,
                                    "Office document is encrypted and cannot be scanned",
                                    location))
            return findings
    except fatal:
        raise
    except Exception:  # noqa: BLE001,S110 - not an Office file msoffcrypto knows; go on
        pass
    findings.extend(macro_findings(data, name, location, fatal))
    return findings


def macro_findings(data: bytes, name: str, location: str | None,
                   fatal: tuple[type[BaseException], ...] = ()) -> list[Finding]:
    with warnings.catch_warnings():
        # olevba's pyparsing grammar emits deprecation warnings on import; not ours to fix.
        warnings.simplefilter("ignore", DeprecationWarning)
        from oletools.olevba import VBA_Parser

    try:
        parser = VBA_Parser(name or "document", data=data, relaxed=True)
    except fatal:
        raise
    except Exception as exc:  # noqa: BLE001 - olevba raises many types on odd input
        return [Finding("document.unparsable", Severity.LOW,
                        f"OLE document could not be analysed: {type(exc).__name__}", location)]
    try:
        if not parser.detect_vba_macros():
            return []
        results = parser.analyze_macros() or []
    except fatal:
        raise
    except Exception as exc:  # noqa: BLE001
        return [Finding("document.macro", Severity.MEDIUM,
                        f"document has VBA macros that could not be analysed: "
                        f"{type(exc).__name__}", location)]
    finally:
        parser.close()
    autoexec = sorted({kw for kind, kw, _ in results if kind == "AutoExec"})
    suspicious = sorted({kw for kind, kw, _ in results if kind == "Suspicious"})
    findings = [Finding("document.macro", Severity.MEDIUM, "document contains VBA macros",
                        location)]
    if autoexec:
        findings.append(Finding("document.macro.autoexec", Severity.HIGH,
                                f"macros run automatically: {', '.join(autoexec)}", location))
    if suspicious:
        findings.append(Finding("document.macro.suspicious", Severity.HIGH,
                                f"macros use suspicious calls: {', '.join(suspicious)}",
                                location))
    dangerous = [kw for kw in suspicious if any(d in kw.lower() for d in _DANGEROUS_CALLS)]
    if autoexec and dangerous:
        findings.append(Finding("document.macro.autoexec_dangerous", Severity.CRITICAL,
                                f"auto-executing macro calls {', '.join(dangerous)}", location))
    return findings


_TRAILING_ARCHIVES = ((b"7z\xbc\xaf\x27\x1c", "7z"), (b"Rar!\x1a\x07", "rar"))


def appended_archives(data: bytes) -> list[tuple[str, int]]:
    """Archives hiding after a PDF or image: ``[(kind, offset)]``, empty for the rest."""
    if not is_pdf_or_image(data):
        return []
    found: list[tuple[str, int]] = []
    if find_eocd(data) >= 0:
        # Random bytes can contain an end-of-directory signature; only a directory that
        # parses and starts after the first byte counts as an appended zip.
        with contextlib.suppress(ZipFormatError, ValueError, IndexError):
            directory = read_directory(data, max_entries=1)
            if directory.prefix_bytes > 0:
                found.append(("zip", directory.prefix_bytes))
    # One search per signature (secops.scanning.search: memmem); a regex alternation of
    # the two has no literal prefix to skip with and measured four times slower.
    for signature, kind in _TRAILING_ARCHIVES:
        offset = search.find(data, signature, 1)
        if offset > 0:
            found.append((kind, offset))
    return found
