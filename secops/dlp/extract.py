"""Text extraction: turn a file's bytes into named text parts, within limits.

* Text (any common encoding; UTF-8 first, then BOMs, then charset_normalizer), CSV,
  JSON, XML, HTML, logs: one part, ``text``, the file decoded *as is*, so offsets are
  offsets into the file's text (markup is scanned too; it does not hide values).
* DOCX, XLSX, PPTX: the text runs of each XML member, read straight from the zip with
  a regular expression (no DTD, no entity expansion, so no XML bombs); one part per
  member, e.g. ``word/document.xml`` or ``xl/sharedStrings.xml``.
* PDF: one part per page (``page 3``), via pypdf.
* E-mail (RFC 822): the raw message is one part (``message``), so plain bodies and
  headers keep file offsets; base64 and quoted-printable bodies are decoded into extra
  parts and attachments are extracted recursively (``attachment:report.docx/...``).
* Other zip files, tar, gzip, bzip2, xz, 7z, ar and cpio are archives: they go to the
  ``archive_walker`` hook (:class:`secops.dlp.archives.SafeArchiveWalker` wraps the
  scanning engine's safe walker); without it the file yields an error entry. A walker
  may raise :class:`ArchiveError` after its members: its problems become errors.
* Compressed containers that are not expanded (RAR, cab, Zstandard, disc images...,
  :func:`secops.scanning.containers.unexpanded_container`) yield an error entry instead
  of their compressed bytes decoded as text.

Limits (:class:`Limits`) bound input size, number of parts, decompressed size, total
characters and wall time; hitting one sets ``truncated`` and records why.
"""

from __future__ import annotations

import email
import email.policy
import html
import io
import re
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage

import charset_normalizer

from secops.dlp.errors import ArchiveError, ExtractionError


@dataclass(frozen=True, slots=True)
class Part:
    name: str
    text: str


@dataclass(frozen=True, slots=True)
class Limits:
    max_bytes: int = 64 << 20
    max_parts: int = 2000
    max_chars: int = 64 << 20
    max_member_bytes: int = 32 << 20
    max_ratio: int = 200
    max_depth: int = 3
    max_seconds: float = 60.0


@dataclass(slots=True)
class Extraction:
    parts: list[Part] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    truncated: bool = False


class _Budget:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.max_seconds
        self.chars = 0
        self.out = Extraction()

    def add(self, name: str, text: str) -> bool:
        """Record a part; False once a limit is reached (callers stop)."""
        lim = self.limits
        if len(self.out.parts) >= lim.max_parts or self.chars + len(text) > lim.max_chars:
            return self.stop("size limit reached")
        if time.monotonic() > self.deadline:
            return self.stop("time limit reached")
        if text:
            self.out.parts.append(Part(name, text))
            self.chars += len(text)
        return True

    def stop(self, why: str) -> bool:
        if not self.out.truncated:
            self.out.truncated = True
            self.out.errors.append(why)
        return False


def decode_text(data: bytes) -> str:
    """Decode bytes of unknown encoding; UTF-8 is tried first and kept verbatim."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    for bom, codec in ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
                       (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):
            return data.decode(codec, errors="replace")
    best = charset_normalizer.from_bytes(data[: 1 << 20]).best()
    encoding = best.encoding if best is not None else "utf-8"
    return data.decode(encoding, errors="replace")


def guess_encoding(sample: bytes) -> str:
    """Encoding for streaming a large text file, from its first bytes."""
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(sample) - 4:
            return "utf-8"  # cut in the middle of a character
    for bom, codec in ((b"\xff\xfe\x00\x00", "utf-32"), (b"\xff\xfe", "utf-16"),
                       (b"\xfe\xff", "utf-16")):
        if sample.startswith(bom):
            return codec
    best = charset_normalizer.from_bytes(sample).best()
    return best.encoding if best is not None else "utf-8"


_EMAIL_HEADER = re.compile(
    rb"(?:Return-Path|Received|From|To|Subject|Date|Message-ID|MIME-Version|Delivered-To):",
    re.I,
)


def sniff(data: bytes, filename: str = "") -> str:
    """Kind of document: pdf, docx, xlsx, pptx, zip, archive, email or text."""
    name = filename.lower()
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        for ext in ("docx", "xlsx", "pptx"):
            if name.endswith("." + ext):
                return ext
        return "zip"
    # the scanning engine's signatures; imported here, since importing the scanning
    # package costs a fifth of a second that a classifier of text never needs
    from secops.scanning.containers import archive_kind

    if archive_kind(data) is not None:
        return "archive"
    if name.endswith((".eml", ".msg.txt")) or (
        _EMAIL_HEADER.match(data) and b"\n\n" in data[:65536] or b"\r\n\r\n" in data[:65536]
        and _EMAIL_HEADER.match(data)
    ):
        return "email"
    return "text"


def unreadable_container(data: bytes) -> str | None:
    """Why a container that is not expanded (RAR, cab, Zstandard, disc images...) is not
    read; ``None`` for anything else. Decoding its compressed bytes as text would only
    classify noise."""
    from secops.scanning.containers import unexpanded_container

    found = unexpanded_container(data)
    if found is None:
        return None
    return f"{found.name} archive not read (format not expanded)"


_OOXML = {
    "docx": (re.compile(r"word/(document|header\d*|footer\d*|footnotes|endnotes|comments)\.xml"),
             re.compile(r"<w:t(?:\s[^<>]*+)?>([^<]*)</w:t>|</w:p>|<w:tab/>|<w:br/>")),
    "xlsx": (re.compile(r"xl/(sharedStrings|worksheets/sheet\d+)\.xml"),
             re.compile(r"<(?:t|v)(?:\s[^<>]*+)?>([^<]*)</(?:t|v)>|</si>|</c>|</row>")),
    "pptx": (re.compile(r"ppt/(slides/slide\d+|notesSlides/notesSlide\d+)\.xml"),
             re.compile(r"<a:t(?:\s[^<>]*+)?>([^<]*)</a:t>|</a:p>")),
}
_SEPARATOR = {"</w:p>": "\n", "<w:tab/>": "\t", "<w:br/>": "\n", "</si>": "\n", "</c>": "\t",
              "</row>": "\n", "</a:p>": "\n"}


def _xml_text(xml: str, runs: re.Pattern[str]) -> str:
    out = []
    for m in runs.finditer(xml):
        if m.group(1) is not None:
            out.append(html.unescape(m.group(1)))
        else:
            out.append(_SEPARATOR.get(m.group(0), ""))
    return "".join(out)


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: _Budget) -> bytes | None:
    lim = budget.limits
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > lim.max_member_bytes or ratio > lim.max_ratio:
        budget.out.errors.append(f"{info.filename}: skipped, too large or too compressed")
        budget.out.truncated = True
        return None
    with zf.open(info) as fh:
        data = fh.read(lim.max_member_bytes + 1)  # the header may lie about the size
    if len(data) > lim.max_member_bytes:
        budget.out.errors.append(f"{info.filename}: skipped, too large")
        budget.out.truncated = True
        return None
    return data


def _ooxml(data: bytes, kind: str, prefix: str, budget: _Budget) -> None:
    members, runs = _OOXML[kind]
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = [i for i in zf.infolist() if members.fullmatch(i.filename)]
        infos.sort(key=lambda i: [int(t) if t.isdigit() else t
                                  for t in re.split(r"(\d+)", i.filename)])
        for info in infos:
            raw = _read_member(zf, info, budget)
            if raw is None:
                continue
            text = _xml_text(raw.decode("utf-8", "replace"), runs)
            if not budget.add(prefix + info.filename, text):
                return


def _pdf(data: bytes, prefix: str, budget: _Budget) -> None:
    from pypdf import PdfReader  # imported lazily: only PDF documents pay for it

    reader = PdfReader(io.BytesIO(data))
    for number, page in enumerate(reader.pages, start=1):
        if not budget.add(f"{prefix}page {number}", page.extract_text() or ""):
            return


def _email(data: bytes, prefix: str, budget: _Budget, walker: Walker | None, depth: int) -> None:
    budget.add(prefix + "message", decode_text(data))
    message = email.message_from_bytes(data, policy=email.policy.default)
    for index, sub in enumerate(message.walk()):
        if sub.is_multipart():
            continue
        encoding = str(sub.get("Content-Transfer-Encoding", "7bit")).lower().strip()
        filename = sub.get_filename()
        if filename is None and encoding not in {"base64", "quoted-printable"}:
            continue  # already scanned in the raw message
        payload = sub.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        if filename is not None:
            name = f"{prefix}attachment:{filename}/"
            _dispatch(payload, filename, name, budget, walker, depth + 1)
        elif sub.get_content_maintype() == "text":
            assert isinstance(sub, EmailMessage)
            charset = sub.get_content_charset() or "utf-8"
            try:
                text = payload.decode(charset, errors="replace")
            except LookupError:
                text = decode_text(payload)
            budget.add(f"{prefix}body[{index}]", text)


Walker = Callable[[bytes, str], Iterable[tuple[str, bytes]]]


def _dispatch(data: bytes, filename: str, prefix: str, budget: _Budget, walker: Walker | None,
              depth: int) -> None:
    if depth > budget.limits.max_depth:
        budget.stop("nesting limit reached")
        return
    kind = sniff(data, filename)
    try:
        if kind == "pdf":
            _pdf(data, prefix, budget)
        elif kind in _OOXML:
            _ooxml(data, kind, prefix, budget)
        elif kind == "email":
            _email(data, prefix, budget, walker, depth)
        elif kind in ("zip", "archive"):
            if walker is None:
                budget.out.errors.append(f"{prefix or filename}: archive not scanned (no walker)")
                return
            try:
                for member, member_data in walker(data, filename):
                    _dispatch(member_data, member, f"{prefix}{member}/", budget, walker,
                              depth + 1)
            except ArchiveError as exc:
                for problem in exc.problems:
                    budget.out.errors.append(f"{prefix or filename}: {problem}")
                if exc.truncated:
                    budget.out.truncated = True
        elif (unread := unreadable_container(data)) is not None:
            budget.out.errors.append(f"{prefix or filename}: {unread}")
        else:
            budget.add(prefix + "text" if prefix else "text", decode_text(data))
    except (zipfile.BadZipFile, ValueError, KeyError, OSError, RuntimeError) as exc:
        # pypdf, zipfile and email raise these on corrupt input; keep scanning siblings
        budget.out.errors.append(f"{prefix or filename}: unreadable {kind} ({type(exc).__name__})")


def extract(data: bytes, filename: str = "", limits: Limits | None = None,
            archive_walker: Walker | None = None) -> Extraction:
    """Named text parts of a document; raises ExtractionError only for oversize input."""
    limits = limits or Limits()
    if len(data) > limits.max_bytes:
        raise ExtractionError(f"document is larger than {limits.max_bytes} bytes")
    budget = _Budget(limits)
    _dispatch(data, filename, "", budget, archive_walker, 0)
    return budget.out
