"""Web shells: server-side code that runs what the HTTP request says.

A web shell joins a *source* (request input: PHP's ``$_GET``/``$_POST``/``$_REQUEST``/
``$_COOKIE``/``$_SERVER``/``php://input``, JSP's ``request.getParameter``, ASP's
``Request(...)``/``Request.Form[...]``) to a *sink* that runs code or commands. The
sink may be fed directly (``system($_GET['c'])``), through wrappers
(``eval(base64_decode($_POST['x']))``) or through variables (``$c = $_REQUEST['c'];
... passthru($c);``), so each file gets a small taint pass: variables assigned from a
source, or from a variable already tainted, are tainted (to a fixed point), and a sink
whose arguments mention a source or a tainted variable is a finding.

Sinks per language:

* PHP: ``eval``, ``assert``, ``system``, ``exec``, ``shell_exec``, ``passthru``,
  ``popen``, ``proc_open``, ``pcntl_exec``, ``create_function``; callbacks whose
  *callable* argument is tainted (``call_user_func``, ``array_map``, ``usort``...);
  ``preg_replace`` with the ``/e`` modifier; backtick commands; variable functions
  (``$f($x)`` with ``$f`` tainted, ``$_GET['f']($_GET['c'])``).
* JSP: ``Runtime.getRuntime().exec``, any ``.exec(`` call, ``new ProcessBuilder``,
  ``.command(``, script-engine ``.eval(``.
* ASP/ASPX: ``eval``, ``Execute``, ``ExecuteGlobal``, ``Process.Start``,
  ``ProcessStartInfo`` (and its ``Arguments``/``FileName``), ``WScript.Shell``
  ``.Exec``/``.Run``.

Packed PHP (``eval(gzinflate(base64_decode('...')))``, any chain of ``base64_decode``,
``gzinflate``, ``gzuncompress``, ``gzdecode``, ``str_rot13``, ``strrev``, ``hex2bin``,
``urldecode``) is unpacked, up to three layers, and the result checked the same way.
The pass is lexical, not a parser: a sink reached only through a function defined in
another file is not seen.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass

MAX_TEXT = 2 * 1024 * 1024
MAX_ARGS = 4000
MAX_LAYERS = 3
MAX_ASSIGNMENTS = 5000


@dataclass(frozen=True, slots=True)
class Shell:
    language: str
    sink: str
    packed: bool = False


@dataclass(frozen=True, slots=True)
class _Language:
    name: str
    marker: re.Pattern[str]
    source: re.Pattern[str]
    assign: re.Pattern[str]
    var: Callable[[str], str]
    sinks: re.Pattern[str]


_PHP = _Language(
    "PHP",
    re.compile(r"<\?(?:php\b|=|\s)", re.I),
    re.compile(r"\$_(?:GET|POST|REQUEST|COOKIE|SERVER|FILES)\b"
               r"|\$\{\s*['\"]_(?:GET|POST|REQUEST|COOKIE)['\"]\s*\}"
               r"|\$HTTP_(?:GET|POST|COOKIE)_VARS\b|php://input|getallheaders\s*\(", re.I),
    re.compile(r"\$(\w+)\s*\.?=(?!=)\s*((?:[^;=]|==){0,2000});"),
    lambda name: rf"\${re.escape(name)}\b",
    re.compile(r"(?<![\w$>:])(?P<name>eval|assert|system|passthru|shell_exec|exec|popen"
               r"|proc_open|pcntl_exec|create_function|call_user_func_array|call_user_func"
               r"|array_map|array_filter|array_walk|usort|uasort|uksort|register_shutdown_function"
               r"|preg_replace_callback|preg_replace|mb_ereg_replace)\s*\(", re.I),
)
_JSP = _Language(
    "JSP",
    re.compile(r"<%|<jsp:"),
    re.compile(r"\brequest\s*\.\s*get(?:Parameter|ParameterValues|Header|QueryString"
               r"|InputStream|Reader|Part)\s*\("),
    re.compile(r"\b(\w+)\s*\+?=(?!=)\s*((?:[^;=]|==){0,2000});"),
    lambda name: rf"\b{re.escape(name)}\b",
    re.compile(r"(?P<name>Runtime\s*\.\s*getRuntime\s*\(\s*\)\s*\.\s*exec|\.\s*exec"
               r"|new\s+ProcessBuilder|\.\s*command|\.\s*eval)\s*\("),
)
_ASP = _Language(
    "ASP",
    # a page directive, a server script block, or classic ASP's opening statements; a
    # bare "<%" is also a JavaScript template delimiter (underscore, EJS)
    re.compile(r"<%@|<script[^>]+runat\s*=\s*['\"]?server"
               r"|<%\s*(?:(?i:dim|set|if|response\.|server\.|request\b|eval\b|execute)|\n)"),
    re.compile(r"(?<![\w.])(?<!new )Request\s*(?:\.\s*(?:Form|QueryString|Item|Params|Cookies|Headers"
               r"|ServerVariables)\s*)?[\(\[]|\bRequest\s*\.\s*(?:BinaryRead|InputStream)\b",
               re.I),
    re.compile(r"\b(\w+)\s*\+?=(?!=)\s*((?:[^;=\r\n]|==){0,2000})"),
    lambda name: rf"\b{re.escape(name)}\b",
    re.compile(r"(?<![\w.])(?P<name>eval|execute|executeglobal)\b\s*\(?"
               r"|(?P<name2>Process\s*\.\s*Start|new\s+ProcessStartInfo|\.\s*Exec|\.\s*Run)\s*\("
               r"|(?P<name3>\.\s*(?:Arguments|FileName))\s*=(?!=)", re.I),
)
_LANGUAGES = (_PHP, _JSP, _ASP)

# callbacks: the argument index that holds the callable
_CALLBACK_ARG = {"call_user_func": 0, "call_user_func_array": 0, "array_map": 0,
                 "register_shutdown_function": 0, "array_filter": 1, "array_walk": 1,
                 "usort": 1, "uasort": 1, "uksort": 1, "preg_replace_callback": 1}
_PREG_E = re.compile(r"""^\s*(['"])(.).*\2[imsxuADSUXJ]*e[imsxuADSUXJ]*\1""", re.S)
_MB_E = re.compile(r"""['"][imsxp]*e[imsxp]*['"]\s*$""")
_BACKTICK = re.compile(r"`([^`]{1,500})`")
_PHP_VARCALL = re.compile(r"\$(\w+)\s*\(|\$_(?:GET|POST|REQUEST|COOKIE)\s*\[[^\]]{1,60}\]\s*\(")

_PACKED = re.compile(
    r"\b(?:eval|assert)\s*\(\s*@?\s*((?:(?:base64_decode|gzinflate|gzuncompress|gzdecode"
    r"|str_rot13|strrev|hex2bin|rawurldecode|urldecode)\s*\(\s*@?\s*)+)(['\"])([^'\"]{8,})\2",
    re.I)
_PERCENT = re.compile(rb"%([0-9A-Fa-f]{2})")


def _unquote(data: bytes) -> bytes:
    return _PERCENT.sub(lambda m: bytes([int(m.group(1), 16)]), data)


_DECODERS: dict[str, Callable[[bytes], bytes]] = {
    "base64_decode": lambda b: base64.b64decode(re.sub(rb"[^A-Za-z0-9+/=]", b"", b) + b"=="),
    "gzinflate": lambda b: zlib.decompressobj(-15).decompress(b, 4 << 20),
    "gzuncompress": lambda b: zlib.decompressobj().decompress(b, 4 << 20),
    "gzdecode": lambda b: zlib.decompressobj(31).decompress(b, 4 << 20),
    "str_rot13": lambda b: codecs.encode(b.decode("latin-1"), "rot13").encode("latin-1"),
    "strrev": lambda b: b[::-1],
    "hex2bin": lambda b: binascii.unhexlify(b.strip()),
    "rawurldecode": lambda b: _unquote(b),
    "urldecode": lambda b: _unquote(b.replace(b"+", b" ")),
}


def _args(text: str, open_paren: int) -> str:
    """The text between the parenthesis at ``open_paren`` and its match (bounded)."""
    depth = 0
    end = min(len(text), open_paren + MAX_ARGS)
    for i in range(open_paren, end):
        c = text[i]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return text[open_paren + 1:i]
    return text[open_paren + 1:end]


def _split_args(args: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for c in args:
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
    parts.append("".join(current))
    return parts


_EQUALS = re.compile(r"=(?<![=!<>]=)(?!=)")
_NAME_BEFORE = re.compile(r"[$]?\w+\s*[.+]?\Z")


def _tainted(lang: _Language, text: str) -> re.Pattern[str] | None:
    """A pattern for request input and every variable that carries it."""
    # assignments may overlap (an attribute "x=" before "<% c = ..."): match each start
    assignments = []
    for eq in _EQUALS.finditer(text):
        name = _NAME_BEFORE.search(text, max(0, eq.start() - 80), eq.start())
        if name is None:
            continue
        full = lang.assign.match(text, name.start())
        if full is not None:
            assignments.append((full.group(1), full.group(2)[:400]))
            if len(assignments) >= MAX_ASSIGNMENTS:
                break
    names: set[str] = set()
    while True:
        pattern = _taint_pattern(lang, names)
        grown = {name for name, rhs in assignments if name not in names and pattern.search(rhs)}
        if not grown:
            return pattern
        names |= grown


def _taint_pattern(lang: _Language, names: set[str]) -> re.Pattern[str]:
    parts = [lang.source.pattern] + [lang.var(n) for n in sorted(names)]
    return re.compile("|".join(f"(?:{p})" for p in parts), lang.source.flags)


def _sink_argument(lang: _Language, text: str, match: re.Match[str]) -> tuple[str, str]:
    name = next(g for g in (match.group("name"), match.groupdict().get("name2"),
                            match.groupdict().get("name3")) if g)
    if match.group(0).endswith("("):
        return name, _args(text, match.end() - 1)
    line_end = re.compile(r"[\r\n;]|%>").search(text, match.end())
    return name, text[match.end():line_end.start() if line_end else match.end() + 400]


def find_shells(text: str, *, layer: int = 0) -> list[Shell]:
    """Web shells in server-side script text (see the module docstring)."""
    text = text[:MAX_TEXT]
    shells: list[Shell] = []
    for lang in _LANGUAGES:
        if not lang.marker.search(text) and layer == 0:
            continue
        taint = _tainted(lang, text)
        if taint is None:
            continue
        shell = _sink_hit(lang, text, taint)
        if shell is not None:
            shells.append(shell)
    if not shells and layer < MAX_LAYERS:
        for unpacked in unpack_php(text):
            inner = find_shells(unpacked, layer=layer + 1)
            if inner:
                return [Shell(s.language, s.sink, packed=True) for s in inner[:1]]
    return shells


def _sink_hit(lang: _Language, text: str, taint: re.Pattern[str]) -> Shell | None:
    shell_object = lang is not _ASP or re.search(r"wscript\.shell", text, re.I) is not None
    for match in lang.sinks.finditer(text):
        name, args = _sink_argument(lang, text, match)
        key = re.sub(r"\s+", "", name).lower()
        if key in (".exec", ".run") and lang is _ASP and not shell_object:
            continue  # Exec/Run of a WScript.Shell object only
        if lang is _PHP and key in _CALLBACK_ARG:
            parts = _split_args(args)
            index = _CALLBACK_ARG[key]
            if index < len(parts) and taint.search(parts[index]):
                return Shell(lang.name, f"{name}() with a callable from the request")
            continue
        if lang is _PHP and key == "preg_replace" and not _PREG_E.match(args):
            continue
        if lang is _PHP and key == "mb_ereg_replace" and not _MB_E.search(args):
            continue
        if taint.search(args):
            return Shell(lang.name, f"{name.strip()} on request input")
    if lang is _PHP:
        for tick in _BACKTICK.finditer(text):
            if taint.search(tick.group(1)):
                return Shell(lang.name, "backtick command on request input")
        for call in _PHP_VARCALL.finditer(text):
            if call.group(1) is None or taint.fullmatch("$" + call.group(1)):
                return Shell(lang.name, "variable function named by the request")
    return None


def unpack_php(text: str) -> list[str]:
    """The code inside ``eval(decoder(...decoder('literal')))`` constructs."""
    out: list[str] = []
    low = text.lower()
    if "eval" not in low and "assert" not in low:
        return out
    for match in _PACKED.finditer(text):
        chain = re.findall(r"(\w+)\s*\(", match.group(1))
        data = match.group(3).encode("latin-1", "replace")
        try:
            for name in reversed(chain):
                data = _DECODERS[name.lower()](data)
        except (binascii.Error, ValueError, zlib.error, KeyError):
            continue
        out.append(data.decode("latin-1"))
        if len(out) >= 8:
            break
    return out
