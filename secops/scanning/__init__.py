"""File scanning engine: pure domain code that turns bytes into a verdict.

Data model
    :class:`Scanner` (built once from a :class:`ScanConfig`) scans a file with
    ``scan_path(path)`` or ``scan_bytes(data, name)`` and returns a :class:`FileResult`:
    path, SHA-256, MD5, size, libmagic MIME type and description, the ruleset version
    and a list of :class:`Finding` (``id``, :class:`Severity`, ``description``,
    ``location``). The verdict is derived from the findings: any critical finding makes
    the file ``malicious``, any high or medium one ``suspicious``, otherwise ``clean``.
    Members of archives are not results of their own: their findings land on the
    top-level file with a ``location`` such as ``outer.zip!inner/a.zip!eicar.com``.

Checks
    libmagic type versus extension (disguised executables and scripts), PE/ELF headers,
    SHA-256/MD5 blocklists, YARA rules (bundled in ``rules/`` plus configured
    directories; compiled once per process, cached by the ruleset hash, which is the
    ruleset version), PDF actions (hex-escaped names decoded), OLE/VBA macros (oletools),
    OOXML ``vbaProject.bin``, encrypted archives and documents, polyglots (archives
    appended to PDFs or images, image/script polyglots), PowerShell download cradles
    after de-obfuscation and ``-EncodedCommand`` payloads decoded and scanned again
    (``powershell``), web shells by request-to-sink taint (``webshells``), what a PDF
    open action does (``pdfopen``), archives disguised as documents holding
    executables, and zip/tar/gzip/bzip2/xz/7z recursion. The version a result records
    covers the rules and the blocklists' digests (the verdict cache key).

Limits
    Expansion is bounded per top-level file by ``max_depth`` (5), ``max_total_bytes``
    (256 MiB), ``max_entries`` (10 000) and ``max_ratio`` (200:1 for members over
    1 MiB); structural zip checks run before anything is inflated; members are held in
    memory only, never written to disk, and reaching a limit is a finding that makes the
    file suspicious. YARA matching per object is limited to ``match_timeout`` seconds.
    PDF object streams and XLM macros beyond what olevba reports are not inspected.

The engine imports nothing from the API, database, services, tasks or settings: the
caller passes configuration in, and nothing here touches the network.
"""

from secops.scanning.engine import Scanner, iter_files, scan_file
from secops.scanning.models import FileResult, Finding, ScanConfig, Severity, Verdict
from secops.scanning.rules import RulesError, ruleset_version

__all__ = [
    "FileResult",
    "Finding",
    "RulesError",
    "ScanConfig",
    "Scanner",
    "Severity",
    "Verdict",
    "iter_files",
    "ruleset_version",
    "scan_file",
]
