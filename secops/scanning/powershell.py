"""PowerShell download-and-execute cradles and ``-EncodedCommand`` payloads.

A *cradle* fetches code from the network and runs it in memory: ``Invoke-Expression``
(``iex``, ``[scriptblock]::Create``) fed by ``Net.WebClient.DownloadString``/``Data``,
``Invoke-WebRequest``/``Invoke-RestMethod`` or their aliases (``iwr``, ``irm``,
``curl``, ``wget``), directly (``iex (iwr $u).Content``, ``iwr $u | iex``) or through a
variable (``$s = $wc.DownloadString($u)`` ... ``iex $s``); a file downloaded and started
on the same line (``DownloadFile`` or ``-OutFile`` with ``Start-Process``) counts too.

Byte patterns miss the usual obfuscations, so the text is *normalised* first, the way
PowerShell's parser would see it: backtick escapes dropped (``I`E`X``), the format
operator evaluated (``('{1}{0}' -f 'String','Download')``), ``[char]105`` literals and
string concatenation joined (``'Down'+'loadString'``), quotes and case removed, and the
environment-variable spellings of ``iex`` that Invoke-Obfuscation emits
(``$ShellId[1]+$ShellId[13]+'x'``, ``$env:ComSpec[4,15,25]-join''``) replaced. ``&`` and
``.`` invocation of a quoted command name then read like a plain call.

An ``-EncodedCommand`` argument (any abbreviation PowerShell accepts: ``-e``, ``-ec``,
``-en`` ... ``-encodedcommand``, with ``-`` or ``/``) is base64 of UTF-16LE text. Such
payloads are decoded wherever they appear, in ASCII or UTF-16LE text (a ``.bat``, a
``.vbs``, the arguments of a ``.lnk`` shortcut), and returned to the caller to be
scanned again like a file; a payload holding another encoded command is decoded in
turn. The checks run only on objects that the bundled YARA hint rules
``SECOPS_Hint_PowerShell`` and ``SECOPS_Hint_PowerShell_Encoded`` selected, and only in
windows (4 KiB before, 8 KiB after, at most 64) around their matches of words that run
code, obfuscation marks and encoded-command options, so unrelated content costs one
YARA pass and a flow through a variable must fit in a window.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass

WINDOW_BEFORE = 4096  # around each hint match (words that run code, obfuscation, options)
WINDOW_AFTER = 8192
MAX_WINDOWS = 64
MAX_PAYLOADS = 16  # encoded commands decoded per object

_BACKTICK = re.compile(r"`(?=[^\r\n])")
_FORMAT = re.compile(
    r"""\(?\s*(['"])((?:(?!\1).)*?\{\d+\}(?:(?!\1).)*?)\1\s*-f\s*"""
    r"""((?:(['"])(?:(?!\4).)*\4\s*,\s*)*(['"])(?:(?!\5).)*\5)\s*\)?""", re.I)
_FORMAT_ARG = re.compile(r"""'([^']*)'|"([^"]*)\"""")
_CHAR = re.compile(r"\[char\]\s*(0x[0-9a-f]{1,4}|\d{1,5})", re.I)
_CONCAT = re.compile(r"""(['"])\s*\+\s*(['"])""")
_IEX_SPELLINGS = re.compile(
    r"\$shellid\[1\]\s*\+\s*\$shellid\[13\]\s*\+\s*x"
    r"|\$pshome\[(?:4|21)\]\s*\+\s*\$pshome\[(?:30|34)\]\s*\+\s*x"
    r"|\$env:comspec\[4,\s*(?:15|24|26),\s*25\]\s*-join\s*"
    r"|\(\s*\$verbosepreference\.tostring\(\)\s*\)\[1,\s*3\]\s*\+\s*x\s*-join\s*"
    r"|\(\s*gv\s+\*mdr\*\s*\)\.name\[3,\s*11,\s*2\]\s*-join\s*"
    r"|\(\s*get-variable\s+\*mdr\*\s*\)\.name\[3,\s*11,\s*2\]\s*-join\s*")
_QUOTES = re.compile(r"""['"]""")

_EXEC = re.compile(
    r"(?:\biex|\binvoke-expression)\b\s*\)?\s*(?:[($\[{]|\.\s*\()"
    r"|\|\s*(?:&\s*)?\(?(?:iex|invoke-expression)\b"
    r"|\[scriptblock\]::create\s*\(")
_DOWNLOAD = re.compile(
    r"\.\(?download(?:string|data)(?:async|taskasync)?\)?(?:\.invoke)?\s*\("
    r"|\.openread\s*\(|\.getstringasync\s*\("
    r"|(?<![\w-])(?:iwr|irm|curl|wget|invoke-webrequest|invoke-restmethod)\b"
    r"(?:\s+-\w+(?:\s+[\w.:$]+)?)*\s*\(?\s*(?:\$|https?:|ftp:|\(|[\w.-]+/)")
_DOWNLOAD_FILE = re.compile(
    r"\.downloadfile(?:async)?\s*\(|\bstart-bitstransfer\b|-outfile\b")
_START = re.compile(r"\b(?:start-process|saps|invoke-item|ii|start)\s+[\w$.\\:(-]")
_ASSIGN = re.compile(r"\$([\w:]+)\s*=\s*([^\n;]*)")
_LINE_REACH = 400

# -EncodedCommand and every abbreviation PowerShell accepts (and -ec)
_ENCODED = re.compile(
    r"[-/\u2013](?:ec|e(?:n(?:c(?:o(?:d(?:e(?:d(?:c(?:o(?:m(?:m(?:a(?:n(?:d)?)?)?)?)?)?)?)?)?)?)?)?)?)"
    r"""\s+['"]?([A-Za-z0-9+/]{16,}={0,2})""", re.I)


@dataclass(frozen=True, slots=True)
class Cradle:
    """A download-and-execute construct: how it was recognised, and a short excerpt."""

    how: str
    excerpt: str


def normalise(text: str) -> str:
    """The text as PowerShell would read its command words (see the module docstring)."""
    # each step only where its mark occurs: most windows need one or two of them
    if "`" in text:
        text = _BACKTICK.sub("", text)
    for _ in range(3 if ("-f" in text or "-F" in text) else 0):
        # nested format operators resolve from the inside out
        replaced = _FORMAT.sub(_format, text)
        if replaced == text:
            break
        text = replaced
    low = text.lower()
    if "[char]" in low:
        text = _CHAR.sub(_char, text)
    if "+" in text:
        text = _CONCAT.sub("", text)
    text = _QUOTES.sub("", text.lower())
    if any(m in text for m in ("shellid", "pshome", "comspec", "mdr*")):
        text = _IEX_SPELLINGS.sub("iex", text)
    return text


def _format(match: re.Match[str]) -> str:
    template = match.group(2)
    args = [a if a else b for a, b in _FORMAT_ARG.findall(match.group(3))]

    def field(m: re.Match[str]) -> str:
        index = int(m.group(1))
        return args[index] if index < len(args) else m.group(0)

    return "'" + re.sub(r"\{(\d+)\}", field, template) + "'"


def _char(match: re.Match[str]) -> str:
    raw = match.group(1)
    code = int(raw, 16) if raw.lower().startswith("0x") else int(raw)
    return "'" + (chr(code) if 32 <= code < 127 else "") + "'"


_EXEC_WORDS = ("iex", "invoke-expression", "::create")
_FETCH_WORDS = ("download", "openread", "getstringasync", "iwr", "irm", "curl", "wget",
                "invoke-webrequest", "invoke-restmethod", "bitstransfer", "-outfile")


_TICK_WORD = re.compile(r"`(?<=[A-Za-z]`)[A-Za-z]")
_CONCAT_MARK = re.compile(r"\+(?:(?<=['\"]\+)|(?<=['\"] \+))\s*['\"]")
_FORMAT_MARK = re.compile(r"-f\s*['\"]", re.I)
_IEX_MARKS = ("[char]", "shellid[", "pshome[", "comspec[", "mdr*")


def _obfuscated(text: str, low: str) -> bool:
    """Marks of the obfuscations ``normalise`` undoes (each a literal-led search)."""
    return ("`" in text and _TICK_WORD.search(text) is not None) or (
        "+" in text and _CONCAT_MARK.search(text) is not None) or (
        "-f" in low and _FORMAT_MARK.search(text) is not None) or any(
        m in low for m in _IEX_MARKS)
_RUN_WORDS = ("iex", "invoke-expression", "::create", "start-process", "saps",
              "invoke-item", "start ")


def find_cradles(text: str) -> list[Cradle]:
    """Download-and-execute constructs in (already decoded) script text."""
    low = text.lower()
    if not _obfuscated(text, low) and not (
            any(w in low for w in _RUN_WORDS) and any(w in low for w in _FETCH_WORDS)):
        return []  # nothing to normalise and no plain cradle words
    norm = normalise(text)
    if not any(w in norm for w in _FETCH_WORDS):
        return []
    if any(w in norm for w in _EXEC_WORDS):
        for ex in _EXEC.finditer(norm):
            line_start = norm.rfind("\n", 0, ex.start()) + 1
            line_end = norm.find("\n", ex.end())
            line_end = len(norm) if line_end < 0 else line_end
            lo = max(line_start, ex.start() - _LINE_REACH)
            hi = min(line_end, ex.end() + _LINE_REACH)
            if _DOWNLOAD.search(norm, lo, hi):
                return [Cradle("code downloaded and run with Invoke-Expression",
                               _excerpt(norm, ex.start()))]
        cradle = _through_variable(norm)
        if cradle is not None:
            return [cradle]
    for fetch in _DOWNLOAD_FILE.finditer(norm):
        line_end = norm.find("\n", fetch.end())
        if _START.search(norm, fetch.end(), len(norm) if line_end < 0 else line_end):
            return [Cradle("file downloaded and started", _excerpt(norm, fetch.start()))]
    return []


def _through_variable(norm: str) -> Cradle | None:
    tainted = {m.group(1) for m in _ASSIGN.finditer(norm) if _DOWNLOAD.search(m.group(2))}
    for name in sorted(tainted):
        var = re.escape(name)
        use = re.compile(
            rf"(?:\biex|\binvoke-expression|\[scriptblock\]::create)\b\s*\)?\s*\(?\s*\${var}\b"
            rf"|\${var}(?:\.content)?\s*\|\s*(?:&\s*)?\(?(?:iex|invoke-expression)\b")
        hit = use.search(norm)
        if hit is not None:
            return Cradle("downloaded code stored in a variable and run with "
                          "Invoke-Expression", _excerpt(norm, hit.start()))
    return None


def _excerpt(text: str, at: int) -> str:
    snippet = text[max(0, at - 40):at + 80].strip()
    return re.sub(r"\s+", " ", snippet)[:120]


def decode_payload(b64: str) -> str | None:
    """The UTF-16LE text of an encoded command, or ``None`` when it is not one."""
    b64 = b64 + "=" * (-len(b64) % 4)
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) < 8:
        return None
    raw = raw[: len(raw) - len(raw) % 2]
    try:
        text = raw.decode("utf-16-le")
    except UnicodeDecodeError:
        return None
    # PowerShell commands are (almost all) ASCII; random base64 read as UTF-16LE gives
    # CJK and other code points, which are printable too, so only ASCII counts.
    plain = sum(1 for c in text if " " <= c <= "~" or c in "\r\n\t")
    if plain < 0.9 * len(text) or not any(c.isalpha() for c in text):
        return None
    return text


def encoded_commands(text: str) -> list[str]:
    """Decoded ``-EncodedCommand`` payloads found in ``text``, in order, without repeats."""
    payloads: list[str] = []
    for match in _ENCODED.finditer(text):
        before = text[match.start() - 1:match.start()]
        if before and (before.isalnum() or before in "_-"):
            continue  # part of a word or of a longer option
        decoded = decode_payload(match.group(1))
        if decoded is not None and decoded not in payloads:
            payloads.append(decoded)
            if len(payloads) >= MAX_PAYLOADS:
                break
    return payloads


_TEXT_BYTES = bytes(range(0x20, 0x7F)) + b"\t\r\n"


def _looks_binary(head: bytes) -> bool:
    return b"\0" in head


_BLOCK = 2048


def _mostly_text(chunk: bytes) -> bool:
    """Fewer than 30% of the bytes are outside printable ASCII, tab, CR and LF.

    Counted block by block, stopping as soon as the answer is certain: random or
    compressed bytes (a chance hint match in a binary) are settled after about half.
    """
    size = len(chunk)
    limit = 0.3 * size
    # Bytes from 0x80 up are outside that set, and counting them is quicker (one
    # big-integer AND and a bit count): in random or compressed bytes about half are,
    # so they alone reach the limit within the first two thirds of the chunk.
    head = chunk[:int(limit * 2.2) + 1]
    if (int.from_bytes(head, "little")
            & int.from_bytes(b"\x80" * len(head), "little")).bit_count() >= limit:
        return False
    other = 0
    for lo in range(0, size, _BLOCK):
        other += len(chunk[lo:lo + _BLOCK].translate(None, _TEXT_BYTES))
        if other >= limit:
            return False
        if other + size - lo - _BLOCK < limit:
            return True
    return other < limit


def text_views(data: bytes, offsets: Iterable[int]) -> list[str]:
    """The texts to read: windows around ``offsets`` (merged; the whole object when it
    is small), as Latin-1 and, when the object has NUL bytes, as UTF-16LE at both
    alignments."""
    head = data[:4096]
    utf16 = _looks_binary(head) or head.startswith((b"\xff\xfe", b"\xfe\xff"))
    spans: list[list[int]] = []
    for offset in sorted(set(offsets)):
        lo, hi = max(0, offset - WINDOW_BEFORE), offset + WINDOW_AFTER
        if spans and lo <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], hi)
        else:
            spans.append([lo, hi])
        if len(spans) > MAX_WINDOWS:
            break
    if len(data) <= WINDOW_BEFORE + WINDOW_AFTER:
        spans = [[0, len(data)]]
    views: list[str] = []
    for lo, hi in spans[:MAX_WINDOWS]:
        chunk = data[lo:hi]
        # compressed or other binary bytes around a chance match are not text
        if _mostly_text(chunk):
            views.append(chunk.decode("latin-1"))
        if utf16:
            if chunk.startswith(b"\xfe\xff"):
                views.append(chunk.decode("utf-16-be", "replace"))
            # a UTF-16LE view needs NULs in 60% of one alignment's high bytes, so at
            # least that many in the whole window (a cheap count settles most windows)
            elif chunk.count(0) >= 0.6 * ((len(chunk) - 1) // 2):
                for aligned in (chunk, chunk[1:]):
                    if aligned[1::2].count(0) >= 0.6 * (len(aligned) // 2):
                        views.append(aligned.decode("utf-16-le", "replace"))
    return views
