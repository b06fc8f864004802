"""Type identification: libmagic, executable headers, and extension plausibility.

libmagic answers "what is this content"; the file name answers "what does the sender
say it is". The gap between the two is where disguised executables live, so this module
compares them and parses PE/ELF headers itself (a few bytes, no dependency) to describe
executables precisely.
"""

from __future__ import annotations

import logging
import re
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import magic

from secops.scanning import magicdb
from secops.scanning.models import Finding, Severity

log = logging.getLogger(__name__)
_local = threading.local()
# libmagic's description of text that none of its tests recognised: the encoding and
# notes on the lines, nothing else. For such text its MIME pass answers text/plain
# (checked on 15,000 files of a Debian system, 2,452 of them described so: no
# difference), so that pass is skipped when the description says this.
PLAIN_TEXT = re.compile(
    r"(?:ASCII|Unicode text, UTF-8) text"
    r"(?:, with (?:very long lines \(\d+\)|CRLF line terminators|CR line terminators"
    r"|CRLF, LF line terminators|no line terminators|escape sequences|overstriking))*")
# Descriptions that libmagic's built-in checks and fallbacks print with one fixed MIME
# type (is_json.c, is_csv.c; nothing recognised in binary data; no bytes): the MIME
# pass is skipped for them too (20,000 files of this system and 400 random buffers,
# 954 described so: no difference).
FIXED_MIMES = {
    "data": "application/octet-stream",
    "empty": "application/x-empty",
    "JSON text data": "application/json",
    "New Line Delimited JSON text data": "application/x-ndjson",
    "CSV text": "text/csv",
}
# Formats whose every libmagic rule gives one MIME type (``file --list`` shows each
# rule's description and MIME type): the description's first part, up to the first
# comma, then tells the MIME type and the MIME pass is skipped. On 248,000 files of this
# system (/usr, /etc, /var/lib, the Python trees, the benchmark corpus), 9,775 described
# so, both passes agreed on every one. Not here: ``JPEG image data`` (one rule gives
# image/x-hsi), ``PHP script`` (one rule gives none), ``Python script``
# (x-script.python or plain). The tests hold each entry to libmagic's own MIME pass,
# so a libmagic that changes one fails them.
NAMED_MIMES = {
    "HTML document": "text/html",
    "SVG Scalable Vector Graphics image": "image/svg+xml",
    "POSIX shell script": "text/x-shellscript",
    "PDF document": "application/pdf",
    "Zip archive data": "application/zip",
    "PNG image data": "image/png",
    "GIF image data": "image/gif",
}

# Extensions that present a file as something to look at rather than to run.
DOCUMENT_EXTENSIONS = frozenset(
    "pdf doc docx docm dot dotx xls xlsx xlsm xlt ppt pptx pptm odt ods odp rtf txt csv "
    "md log jpg jpeg png gif bmp tif tiff webp ico heic mp3 mp4 m4a wav avi mov mkv".split()
)
EXECUTABLE_EXTENSIONS = frozenset(
    "exe dll scr com pif cpl msi bat cmd ps1 vbs vbe js jse wsf hta jar lnk sh elf bin".split()
)
EXECUTABLE_MIMES = frozenset(
    {
        "application/x-dosexec",
        "application/vnd.microsoft.portable-executable",
        "application/x-executable",
        "application/x-sharedlib",
        "application/x-pie-executable",
        "application/x-mach-binary",
        "application/x-elf",
    }
)
SCRIPT_MIMES = frozenset(
    {
        "text/x-shellscript",
        "text/x-php",
        "text/x-script.python",
        "text/x-python",
        "text/x-perl",
        "text/x-ruby",
        "text/x-msdos-batch",
        "text/x-awk",
        "text/x-tcl",
        "application/x-powershell",
        "application/javascript",
        "text/javascript",
        "application/x-java-applet",
    }
)
SCRIPT_MIME_PREFIX = "text/x-script."  # libmagic's name for interpreters it knows by #!


def is_script_mime(mime: str) -> bool:
    return mime in SCRIPT_MIMES or mime.startswith(SCRIPT_MIME_PREFIX)

_OLE = ("application/x-ole-storage", "application/msword", "application/vnd.ms-excel",
        "application/vnd.ms-powerpoint", "application/CDFV2", "application/vnd.ms-outlook")
_ZIPLIKE = (
    "application/zip", "application/java-archive", "application/epub+zip",
    "application/vnd.openxmlformats-officedocument.", "application/vnd.oasis.opendocument.",
    "application/vnd.ms-excel.", "application/vnd.ms-word.", "application/vnd.ms-powerpoint.",
)
# Only formats with a reliable signature are checked; text formats are not, because
# libmagic's guess between text/plain, text/csv and friends is not a claim to judge.
EXPECTED_MIMES: dict[str, tuple[str, ...]] = {
    "pdf": ("application/pdf",),
    "png": ("image/png",),
    "jpg": ("image/jpeg",),
    "jpeg": ("image/jpeg",),
    "gif": ("image/gif",),
    "bmp": ("image/bmp", "image/x-ms-bmp"),
    "tif": ("image/tiff",),
    "tiff": ("image/tiff",),
    "webp": ("image/webp",),
    "zip": _ZIPLIKE,
    "docx": _ZIPLIKE, "docm": _ZIPLIKE, "xlsx": _ZIPLIKE, "xlsm": _ZIPLIKE,
    "pptx": _ZIPLIKE, "pptm": _ZIPLIKE, "odt": _ZIPLIKE, "ods": _ZIPLIKE,
    "odp": _ZIPLIKE, "jar": _ZIPLIKE, "epub": _ZIPLIKE, "apk": _ZIPLIKE,
    "doc": _OLE, "xls": _OLE, "ppt": _OLE, "msg": _OLE, "msi": _OLE,
    "gz": ("application/gzip", "application/x-gzip"),
    "tgz": ("application/gzip", "application/x-gzip"),
    "bz2": ("application/x-bzip2",),
    "xz": ("application/x-xz",),
    "7z": ("application/x-7z-compressed",),
    "tar": ("application/x-tar", "application/x-ustar"),
    "exe": ("application/x-dosexec", "application/vnd.microsoft.portable-executable"),
    "dll": ("application/x-dosexec", "application/vnd.microsoft.portable-executable"),
    "rtf": ("text/rtf", "application/rtf"),
    "mp3": ("audio/mpeg",),
}

# Raster image formats that carry no code or active content (SVG is not one of them).
INERT_IMAGE_MIMES = frozenset({"image/png", "image/jpeg", "image/gif", "image/bmp",
                               "image/x-ms-bmp", "image/tiff", "image/webp"})

# Script content that libmagic calls plain text (it has tests for shell, Python, PHP and
# "@echo off" batch files, none for PowerShell, VBScript or JScript): the opening of a
# text file named as a document is read for statements. One opening line settles it;
# otherwise two of the first STATEMENT_LINES lines that are not blank or comments must
# be statements of one language, which prose, logs and tables do not open with. Comments
# (also block comments) are skipped; a code fence means a document quoting code. This
# finds scripts renamed to pass as documents; content written to open with something
# else is not recognised (the YARA rules read all of it).
SCRIPT_HEAD = 4096
STATEMENT_LINES = 8
_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
_OPENERS = (
    ("batch file", re.compile(r"@?echo\s+off\b", re.I)),
    ("PowerShell script", re.compile(r"#requires\s+-|(?:powershell|pwsh)(?:\.exe)?\s+-\w", re.I)),
    ("VBScript", re.compile(r"option\s+explicit\b|on\s+error\s+resume\s+next\b", re.I)),
    ("PHP script", re.compile(r"<\?php\b", re.I)),
)
_SHEBANG = re.compile(r"#!\s*/")
_HTA = re.compile(r"<hta:application\b", re.I)
_STATEMENTS = (
    ("PowerShell script", re.compile(
        r"\$[a-z_][\w:]*\s*=|iex\b|param\s*\(|\[(?:system|net|io|convert|reflection|text)[.\]]"
        r"|\[(?:parameter|cmdletbinding|outputtype|string|int|switch|bool|hashtable)\b\s*[(\]]"
        # Verb-Noun cmdlets as scripts write them (nouns capitalised: not "Get-well")
        r"|(?-i:(?:Add|Clear|Copy|Export|Get|Import|Invoke|Move|New|Out|Remove|Rename|Select"
        r"|Set|Start|Stop|Test|Where|Write)-[A-Z][A-Za-z]+)\b", re.I)),
    ("VBScript", re.compile(
        r"dim\s+\w+\s*(?:,|\(|$|as\b)|set\s+\w+\s*=\s*\w|\w+\s*=\s*createobject\s*\(|wscript\.\w"
        r"|end\s+(?:sub|function|if)\b|(?:sub|function)\s+\w+\s*\(", re.I)),
    ("JScript", re.compile(
        r"(?:var|let|const)\s+\w+\s*=|new\s+activexobject\s*\(|wscript\.\w"
        r"|function\s+\w*\s*\(|eval\s*\(", re.I)),
    ("batch file", re.compile(
        r"@?(?:rem\b|setlocal\b|set\s+\"?\w+=|if\s+(?:not\s+)?(?:exist|errorlevel|defined)\b"
        r"|goto\s+:?\w|cmd(?:\.exe)?\s+/[ck]\b|call\s+(?::\w|%|\"?[\w%~.\\:-]+\.(?:bat|cmd)\b)"
        r"|start\s+(?:\"|/\w|%|[\w%~.\\:-]+\.(?:exe|bat|cmd|com|ps1|vbs|js|hta|msi)\b))",
        re.I)),
)
_COMMENTS = ("#", "'", "//", "*", "::")
_BLOCK_COMMENTS = (("<#", "#>"), ("/*", "*/"))  # PowerShell, JScript


# libmagic's tests for JavaScript, Python, Ruby, PHP and a few more languages are
# regular expressions searched anywhere in the text (``(function(``, ``^import x``,
# ``<?php``), so a README quoting code, or a log line that mentions ``(function()``,
# takes a script's MIME type. For a file named as a document such a guess counts only
# when the text also opens as code: it starts with an interpreter line, or its first
# line that is not blank or a comment is a statement (``_CODE_LINE``: a keyword, an
# assignment, a call, a member access, an immediately invoked function, a string
# literal alone, a Python docstring), or the whole opening is comments. Prose and
# Markdown (a heading is a comment here; a code fence ends the reading) do not.
_CODE_LINE = re.compile(
    r"(?:import|from|export|def|class|function|async|var|let|const|require|use|my|our|sub"
    r"|package|module|namespace|include|return|if|elif|else|for|foreach|while|do|try"
    r"|switch|begin|local|print|puts|echo|public|private|static|void)\b"
    r"|[\w$.\[\]'\"]+(?:\s*(?:[-+*/.|&]?=(?!=)|->|::)|\(|\.[A-Za-z_$]|\[)"
    r"|[!+(;~]\s*function\b|['\"]use strict['\"]|<\?php\b|[{}()]|@\w"
    r"|[rRuUbB]?(?:\"\"\"|''')|\"[^\"]*\"\s*;?$|'[^']*'\s*;?$")
# libmagic's script types that come from such text tests (not a Java class file's
# binary signature, which application/x-java-applet names)
_TEXT_SCRIPT_MIMES = ("application/javascript", "application/x-powershell")
_STATEMENT, _COMMENT, _FENCE = "statement", "comment", "fence"


def _opening(data: bytes) -> str:
    """The first ``SCRIPT_HEAD`` bytes after a byte-order mark, decoded."""
    start, encoding = next(((len(bom), name) for bom, name in _BOMS if data.startswith(bom)),
                           (0, "utf-8"))
    return data[start:start + SCRIPT_HEAD].decode(encoding, "replace")


def _opening_lines(text: str) -> Iterator[tuple[str, str]]:
    """The text's lines that are not blank, stripped, each as a statement or a comment
    (block comments too); a Markdown code fence ends them (a document quoting code)."""
    closing = ""  # the end of the block comment being skipped
    for raw in text.splitlines():
        line = raw.strip()
        if closing:
            if closing in line:
                closing = ""
            continue
        if not line:
            continue
        if line.startswith(("```", "~~~")):
            yield line, _FENCE
            return
        block = next(((start, end) for start, end in _BLOCK_COMMENTS if line.startswith(start)),
                     None)
        if block is not None:
            closing = "" if block[1] in line[len(block[0]):] else block[1]
            yield line, _COMMENT
        elif line.startswith(_COMMENTS):
            yield line, _COMMENT
        else:
            yield line, _STATEMENT


def script_language(data: bytes) -> str | None:
    """The script language the opening of this text is written in, or ``None``.

    For text libmagic does not recognise as a script: a file named ``invoice.pdf`` or
    ``notes.txt`` that holds PowerShell, VBScript, JScript, a batch file or an HTML
    application (HTA) is a script presented as a document all the same. Only the first
    ``SCRIPT_HEAD`` bytes after a byte-order mark are read."""
    text = _opening(data)
    if _SHEBANG.match(text):
        return "script with an interpreter line (#!)"
    if text.lstrip().startswith("<") and _HTA.search(text):
        return "HTML application (HTA)"
    lines: list[str] = []
    for line, kind in _opening_lines(text):
        if kind == _FENCE:
            return None  # a document quoting code (Markdown), not code
        if not lines:
            for language, opener in _OPENERS:
                if opener.match(line):
                    return language
        if kind == _STATEMENT:
            lines.append(line)
            if len(lines) >= STATEMENT_LINES:
                break
    for language, statement in _STATEMENTS:
        if sum(1 for line in lines if statement.match(line)) >= 2:
            return language
    return None


def opens_as_code(data: bytes) -> bool:
    """Whether the text starts with an interpreter line or its first statement reads as
    code (``_CODE_LINE``); see the comment above it. An opening that is all comments (a
    licence header longer than ``SCRIPT_HEAD``) does not say otherwise."""
    text = _opening(data)
    if text.startswith("#!"):
        return True
    for line, kind in _opening_lines(text):
        if kind == _COMMENT and line.startswith("'''"):
            return True  # a Python docstring (a VBScript comment opens with ' too)
        if kind != _COMMENT:
            return kind == _STATEMENT and _CODE_LINE.match(line) is not None
    return True


_PE_MACHINES = {0x14C: "x86", 0x8664: "x86-64", 0x1C0: "ARM", 0xAA64: "ARM64", 0x200: "IA-64"}
_ELF_MACHINES = {3: "x86", 0x3E: "x86-64", 0x28: "ARM", 0xB7: "AArch64", 0xF3: "RISC-V",
                 8: "MIPS", 0x14: "PowerPC", 0x15: "PowerPC64", 0x16: "S390"}
_ELF_TYPES = {1: "relocatable", 2: "executable", 3: "shared object", 4: "core"}


@dataclass(frozen=True, slots=True)
class TypeInfo:
    mime: str
    description: str
    executable: str | None  # "PE ..." / "ELF ..." when the header parses, else None


def _magic_pair() -> tuple[magic.Magic, magic.Magic]:
    # libmagic handles are not thread-safe; one pair per thread is cheap and lock-free.
    pair = getattr(_local, "pair", None)
    if pair is None:
        pair = (_flagged(magic.Magic(mime=True)), _flagged(magic.Magic()))
        _local.pair = pair
    return pair


def _flagged(cookie: magic.Magic) -> magic.Magic:
    # No troff/Fortran keyword guessing on text: no MIME the checks use comes from it,
    # and it is about an eighth of libmagic's time on plain text.
    cookie.flags |= magic.MAGIC_NO_CHECK_TOKENS
    magic.magic_setflags(cookie.cookie, cookie.flags)
    return cookie


def _quick_handle(mime: bool) -> magic.Magic | None:
    """A handle on the reduced database (:mod:`secops.scanning.magicdb`) for this
    thread, opened when first needed, or ``None`` where it cannot be had."""
    handles = getattr(_local, "quick", None)
    if handles is None:
        handles = _local.quick = {}
    if mime not in handles:
        database = magicdb.load()
        handle = None
        if database is not None:
            try:
                handle = _flagged(database.open(mime=mime))
            except (OSError, magic.MagicException) as exc:
                log.debug("reduced libmagic database not loaded: %s", exc)
        handles[mime] = handle
    return handles[mime]


def prepare(*, describe: bool, reduced: bool = True) -> None:
    """Load this thread's libmagic handles (and build the reduced database) now: a
    process that forks workers afterwards hands them down instead of each worker
    loading its own."""
    _magic_pair()
    if reduced:
        _quick_handle(True)
        if describe:
            _quick_handle(False)


def describe_executable(data: bytes) -> str | None:
    """Describe a PE or ELF header, or return ``None`` for anything else."""
    if data[:2] == b"MZ" and len(data) >= 0x40:
        (pe_offset,) = struct.unpack_from("<I", data, 0x3C)
        if pe_offset + 24 <= len(data) and data[pe_offset : pe_offset + 4] == b"PE\0\0":
            machine, _, _, _, _, _, chars = struct.unpack_from("<HHIIIHH", data, pe_offset + 4)
            kind = "DLL" if chars & 0x2000 else "executable"
            return f"PE {kind} ({_PE_MACHINES.get(machine, hex(machine))})"
        return "MS-DOS executable"
    if data[:4] == b"\x7fELF" and len(data) >= 20:
        bits = {1: "32-bit", 2: "64-bit"}.get(data[4], "?-bit")
        order = "<" if data[5] != 2 else ">"
        e_type, e_machine = struct.unpack_from(order + "HH", data, 16)
        return (f"ELF {bits} {_ELF_TYPES.get(e_type, 'object')} "
                f"({_ELF_MACHINES.get(e_machine, hex(e_machine))})")
    return None


def identify(data: bytes, magic_bytes: int, *, describe: bool = True,
             json_bytes: int = 0, reduced: bool = True) -> TypeInfo:
    """libmagic MIME (and description) of the first ``magic_bytes`` bytes, plus headers.

    Each libmagic call costs about a millisecond on text, more than YARA needs for a
    small file, so the description is optional (members of archives only need the
    MIME). With it, the description comes first: text that none of libmagic's tests
    recognised is described by its encoding alone (``PLAIN_TEXT``), and its MIME type is
    then ``text/plain`` without a second pass; so are the descriptions that come with
    one MIME type only (``FIXED_MIMES``) and the formats named with their MIME type
    (``NAMED_MIMES``).

    Content that opens like JSON (``{`` or ``[`` after whitespace) is shown to libmagic
    up to ``json_bytes`` when that is more: its JSON parser recognises only a document
    it can read to the end, and a recognised one ends the call before the text tests,
    which cost more than the parse (a cut-off document is text/plain, after both).
    """
    head = data[:magic_bytes]
    if json_bytes > magic_bytes and len(data) > magic_bytes and opens_like_json(head):
        head = data[:json_bytes]
    # ASCII text with none of the runs that libmagic's costlier text tests look for
    # gets the same answer from a database without those tests (secops.scanning.magicdb).
    quick = reduced and len(head) <= magic_bytes and _quick_applies(head)
    try:
        description, mime = "", None
        if describe:
            description = _handle(quick, mime=False).from_buffer(head)
            mime = mime_of_description(description)
        if mime is None:
            mime = _handle(quick, mime=True).from_buffer(head)
    except magic.MagicException as exc:  # a libmagic parse failure is not fatal
        mime, description = "application/octet-stream", f"unidentified ({exc})"
    return TypeInfo(mime=mime, description=description, executable=describe_executable(data))


def _quick_applies(head: bytes) -> bool:
    database = magicdb.load()
    return database is not None and database.applies(head)


def _handle(quick: bool, *, mime: bool) -> magic.Magic:
    handle = _quick_handle(mime) if quick else None
    return handle or _magic_pair()[0 if mime else 1]


def mime_of_description(description: str) -> str | None:
    """The MIME type libmagic gives whatever it described so (``PLAIN_TEXT``,
    ``FIXED_MIMES``, ``NAMED_MIMES``), or ``None`` when only its MIME pass can tell."""
    if PLAIN_TEXT.fullmatch(description):
        return "text/plain"
    return FIXED_MIMES.get(description) or NAMED_MIMES.get(description.split(",", 1)[0])


def opens_like_json(head: bytes) -> bool:
    """Whether the first byte after JSON whitespace opens an object or an array."""
    return head.lstrip(b" \t\r\n")[:1] in (b"{", b"[")


BINARY_CLAIM, TEXT_CLAIM = "binary", "text"


def name_claims_type(name: str) -> str | None:
    """What the name's extension claims, if its content type is checked at all:
    ``BINARY_CLAIM`` for a format with a signature (``EXPECTED_MIMES``), ``TEXT_CLAIM``
    for a document with none (.txt, .csv, .md: only checked for script content)."""
    exts = _extensions(name)
    if not exts:
        return None
    if exts[-1] in EXPECTED_MIMES:
        return BINARY_CLAIM
    return TEXT_CLAIM if exts[-1] in DOCUMENT_EXTENSIONS else None


_IMAGE_SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"II*\0", b"MM\0*")


def is_pdf_or_image(data: bytes) -> bool:
    """Own signature check used where libmagic was skipped (polyglot detection)."""
    return (b"%PDF-" in data[:1024] or data.startswith(_IMAGE_SIGNATURES)
            or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"))


def _extensions(name: str) -> list[str]:
    """The lower-cased suffixes of the last path component, as ``PurePosixPath.suffixes``
    gives them (leading dots of the name ignored; none when it ends with a dot)."""
    base = next((p for p in reversed(name.replace("\\", "/").split("/")) if p and p != "."), "")
    if not base or base.endswith("."):
        return []
    return [s.lower() for s in base.lstrip(".").split(".")[1:]]


def mime_allowed(mime: str, allowed: frozenset[str] | None) -> bool:
    if allowed is None:
        return True
    return mime in allowed or f"{mime.split('/', 1)[0]}/*" in allowed


def type_findings(name: str, info: TypeInfo, location: str | None,
                  data: bytes) -> list[Finding]:
    """Findings from comparing the declared name with the detected content type
    (``data``, the content, is read for script statements when libmagic says text)."""
    findings: list[Finding] = []
    exts = _extensions(name)
    ext = exts[-1] if exts else ""
    # libmagic's "DOS executable (COM)" is a guess that random bytes satisfy; only an
    # MZ/PE or ELF header that parses (info.executable) or another exe MIME counts.
    is_binary_exe = info.executable is not None or (
        info.mime in EXECUTABLE_MIMES and info.mime != "application/x-dosexec")
    is_script = is_script_mime(info.mime)
    language = None
    if ext in DOCUMENT_EXTENSIONS and not is_binary_exe and (
            info.mime.startswith("text/") or info.mime in _TEXT_SCRIPT_MIMES):
        language = script_language(data)
        # libmagic's script type from code quoted in a document (see _CODE_LINE)
        is_script = language is not None or (is_script and opens_as_code(data))
    if info.executable is not None:
        findings.append(Finding("executable.identified", Severity.INFO, info.executable,
                                location))
    if ext in DOCUMENT_EXTENSIONS and (is_binary_exe or is_script):
        what = "executable" if is_binary_exe else "script"
        detail = info.executable or language or info.description or info.mime
        findings.append(Finding(
            f"type.disguised_{what}", Severity.HIGH,
            f"{what} content ({info.mime}: {detail}) named as .{ext}", location))
    elif ext in EXPECTED_MIMES and info.mime not in ("application/x-empty", "inode/x-empty"):
        expected = EXPECTED_MIMES[ext]
        if not any(info.mime == e or (e.endswith(".") and info.mime.startswith(e))
                   for e in expected):
            # PNG data named .jpg (a common export slip) is shown the same by every
            # viewer: between two inert raster formats a mismatch is only a note.
            inert = info.mime in INERT_IMAGE_MIMES and set(expected) <= INERT_IMAGE_MIMES
            # Plain text under a binary format's name (Tcl's .msg catalogs are not
            # Outlook messages) runs nowhere; text that is code is judged above.
            text = info.mime == "text/plain" and script_language(data) is None
            findings.append(Finding(
                "type.extension_mismatch", Severity.INFO if inert or text else Severity.MEDIUM,
                f"extension .{ext} does not match detected type {info.mime}"
                + (" (both inert image formats)" if inert else " (plain text)" if text else ""),
                location))
    if len(exts) >= 2 and ext in EXECUTABLE_EXTENSIONS and exts[-2] in DOCUMENT_EXTENSIONS:
        findings.append(Finding(
            "type.double_extension", Severity.MEDIUM,
            f"executable extension hidden behind .{exts[-2]}.{ext}", location))
    return findings
