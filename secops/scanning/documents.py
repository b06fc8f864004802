"""Document checks: PDF actions, OLE/VBA macros, encrypted documents, polyglots.

PDF names may be written with ``#xx`` hex escapes (``/J#61vaScript``) precisely to
dodge byte-pattern scanners, so names are normalised before they are compared. Macro
analysis uses oletools' olevba, which understands OLE files and ``vbaProject.bin``
streams alike; its import is deferred because it costs about 0.2 s and most files are
not OLE. Objects inside compressed PDF object streams are not inspected (a documented
limit of this engine).
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import warnings

from secops.scanning.filetype import is_pdf_or_image
from secops.scanning.models import Finding, Severity
from secops.scanning.ziparchive import ZipFormatError, find_eocd, read_directory

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_PDF_NAME = re.compile(rb"/((?:[A-Za-z0-9_.+\-]|#[0-9A-Fa-f]{2}){1,64})")
_HEX = re.compile(rb"#([0-9A-Fa-f]{2})")
# Any name worth tokenising: an action/embedding name, /Encrypt, or a hex-escaped name.
_PDF_INTERESTING = re.compile(
    rb"/(?:JS|JavaScript|OpenAction|AA|Launch|Embedded|RichMedia|XFA|Encrypt)"
    rb"|/[A-Za-z0-9]{0,20}#[0-9A-Fa-f]{2}")
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

logging.getLogger("olevba").setLevel(logging.CRITICAL)


def is_pdf(data: bytes) -> bool:
    return b"%PDF-" in data[:1024]


def pdf_findings(data: bytes, location: str | None) -> list[Finding]:
    """Action and embedding names in the PDF's bytes, hex escapes decoded."""
    if not _PDF_INTERESTING.search(data):
        return []  # fast path: one regex pass that builds no match objects
    findings: dict[str, Finding] = {}
    escaped: set[str] = set()
    encrypted = False
    for match in _PDF_NAME.finditer(data):
        raw = match.group(1)
        name = _HEX.sub(lambda m: bytes([int(m.group(1), 16)]), raw) if b"#" in raw else raw
        if name == b"Encrypt":
            encrypted = True
        action = PDF_ACTIONS.get(name)
        if action is None:
            continue
        fid, severity, text = action
        findings.setdefault(fid, Finding(fid, severity, text, location))
        if name != raw:
            escaped.add(name.decode())
    result = list(findings.values())
    if escaped:
        result.append(Finding("pdf.obfuscated_name", Severity.HIGH,
                              f"PDF hides names with hex escapes: /{', /'.join(sorted(escaped))}",
                              location))
    if encrypted:
        result.append(Finding("document.encrypted", Severity.MEDIUM,
                              "PDF is encrypted; its content cannot be fully scanned", location))
    return result


def is_ole(data: bytes) -> bool:
    return data[:8] == OLE_MAGIC


def ole_findings(data: bytes, name: str, location: str | None) -> list[Finding]:
    """Encryption (msoffcrypto) and VBA macro analysis (olevba) of an OLE file."""
    findings: list[Finding] = []
    try:
        import msoffcrypto

        if msoffcrypto.OfficeFile(io.BytesIO(data)).is_encrypted():
            findings.append(Finding("document.encrypted", Severity.MEDIUM,
                                    "Office document is encrypted and cannot be scanned",
                                    location))
            return findings
    except Exception:  # noqa: BLE001,S110 - not an Office file msoffcrypto knows; go on
        pass
    findings.extend(macro_findings(data, name, location))
    return findings


def macro_findings(data: bytes, name: str, location: str | None) -> list[Finding]:
    with warnings.catch_warnings():
        # olevba's pyparsing grammar emits deprecation warnings on import; not ours to fix.
        warnings.simplefilter("ignore", DeprecationWarning)
        from oletools.olevba import VBA_Parser

    try:
        parser = VBA_Parser(name or "document", data=data, relaxed=True)
    except Exception as exc:  # noqa: BLE001 - olevba raises many types on odd input
        return [Finding("document.unparsable", Severity.LOW,
                        f"OLE document could not be analysed: {type(exc).__name__}", location)]
    try:
        if not parser.detect_vba_macros():
            return []
        results = parser.analyze_macros() or []
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
    # bytes.find runs at memchr speed; a regex alternation of the two signatures has
    # no literal prefix to skip with and measured six times slower.
    for signature, kind in _TRAILING_ARCHIVES:
        offset = data.find(signature, 1)
        if offset > 0:
            found.append((kind, offset))
    return found
