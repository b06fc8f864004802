"""The scanner: one entry point that runs every check on a file and its members.

For each object (the file itself, then every archive member, recursively) the scanner
identifies the type, compares it with the name, checks the hash blocklists, runs the
YARA rules, and applies the PDF, OLE/macro, polyglot and archive checks that fit. All
findings are collected on the top-level :class:`FileResult`; members are named by their
``location``. A :class:`Scanner` is immutable after construction and safe to share
between threads (libmagic handles are per thread, YARA matching releases the GIL).
"""

from __future__ import annotations

import errno
import hashlib
import multiprocessing
import os
import stat
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import yara

from secops.scanning import documents, filetype, powershell, webshells
from secops.scanning.archives import Budget, Expander
from secops.scanning.containers import SEVENZIP, ZIP, archive_kind, unexpanded_finding
from secops.scanning.filetype import (
    BINARY_CLAIM,
    DOCUMENT_EXTENSIONS,
    EXECUTABLE_EXTENSIONS,
    TypeInfo,
    describe_executable,
    identify,
    mime_allowed,
    name_claims_type,
    type_findings,
)
from secops.scanning.models import FileResult, Finding, ScanConfig, Severity
from secops.scanning.reputation import Blocklist
from secops.scanning.rules import load_ruleset

# Paths queued ahead per worker (paths only: each file is read by the worker that scans it).
QUEUE_PER_WORKER = 32
FILES_PER_TASK = 4  # paths per message to a worker process


def _check_within(fd: int, root: str, path: str) -> None:
    """The opened file's real path (``/proc/self/fd``) lies under ``root``."""
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        real = os.path.realpath(path)  # no /proc: the best check available
    prefix = os.path.realpath(root).rstrip(os.sep) + os.sep
    if not real.startswith(prefix):
        raise OSError(errno.ELOOP, "path leads outside the scanned directory", path)


@dataclass(slots=True)
class _Context:
    """Mutable state of one top-level scan: findings and the shared expansion budget."""

    findings: list[Finding]
    budget: Budget
    expander: Expander = field(init=False)
    # Exceptions that end the scan instead of becoming a finding: the caller's time limit
    # (Celery's soft time limit is an ``Exception`` raised wherever the code happens to be).
    fatal: tuple[type[BaseException], ...] = ()
    executables: int = 0  # executable members met so far (see _scan_object)


class Scanner:
    """Scans bytes or files with one configuration; construct once, reuse everywhere."""

    def __init__(self, config: ScanConfig | None = None) -> None:
        self.config = config or ScanConfig()
        self.ruleset = load_ruleset(self.config.rule_dirs,
                                    include_bundled=self.config.include_bundled_rules)
        self.blocklist = Blocklist.load(self.config.sha256_blocklists,
                                        self.config.md5_blocklists)
        self._version = verdict_version(self.ruleset.version, self.blocklist)

    @property
    def ruleset_version(self) -> str:
        """What a verdict depends on besides the content: the rules and, when any are
        configured, the blocklists' digests (see :func:`verdict_version`)."""
        return self._version

    def scan_path(self, path: str | os.PathLike[str], *, within: str | None = None) -> FileResult:
        """Scan one regular file; raises ``OSError`` if it cannot be read.

        The file is opened non-blocking and checked with ``fstat`` before reading, so a
        FIFO or device named by mistake (``/dev/zero``) is an error, not a hang or an
        endless read. Files over ``max_file_bytes`` are hashed in chunks and reported as
        too large to scan instead of being loaded.

        With ``within`` (a directory scan's root), a symbolic link is never followed:
        the last component is opened with ``O_NOFOLLOW``, and the file actually opened
        must lie under ``within`` (a directory swapped for a link between the walk and
        the open would lead elsewhere); either is ``OSError``.
        """
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
        if within is not None:
            flags |= os.O_NOFOLLOW
        fd = os.open(path, flags)
        with os.fdopen(fd, "rb") as handle:
            if within is not None:
                _check_within(handle.fileno(), within, os.fspath(path))
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise OSError(errno.EINVAL, "not a regular file", os.fspath(path))
            if info.st_size > self.config.max_file_bytes:
                return self._too_large(handle, os.fspath(path), info.st_size)
            data = handle.read()
        return self.scan_bytes(data, os.path.basename(path), path=os.fspath(path))

    def _too_large(self, handle: BinaryIO, path: str, size: int) -> FileResult:
        sha256, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
        head = handle.read(self.config.magic_bytes)
        chunk = head
        while chunk:
            sha256.update(chunk)
            md5.update(chunk)
            chunk = handle.read(1 << 20)
        info = identify(head, self.config.magic_bytes, describe=self.config.describe,
                        reduced=self.config.reduced_magic)
        ctx = _Context([], Budget(0, 0))
        self._check_hashes(sha256.hexdigest(), md5.hexdigest(), None, ctx)
        ctx.findings.append(Finding("scan.too_large", Severity.MEDIUM,
                                    f"{size} bytes exceeds the {self.config.max_file_bytes}-byte "
                                    "scan limit; only hashed", None))
        return FileResult(path, sha256.hexdigest(), md5.hexdigest(), size, info.mime,
                          info.description, ctx.findings, self._version)

    def scan_bytes(self, data: bytes, name: str, *, path: str | None = None,
                   sha256: str | None = None,
                   fatal: tuple[type[BaseException], ...] = ()) -> FileResult:
        """Scan content that arrived under ``name`` (used for type checks and locations).

        ``sha256`` may be given when the caller has just verified it (a stored file is
        read back under its hash), to save hashing the content twice. ``fatal`` names
        exceptions (a worker's time limit) that propagate from archive expansion instead
        of being reported as a ``scan.error`` finding.
        """
        cfg = self.config
        sha256 = sha256 or hashlib.sha256(data).hexdigest()
        md5 = (hashlib.md5(data, usedforsecurity=False).hexdigest()
               if cfg.md5 or self.blocklist.md5 else "")
        ctx = _Context([], Budget(cfg.max_total_bytes, cfg.max_entries), fatal=fatal)
        ctx.expander = Expander(cfg, ctx.budget, ctx.findings)
        info = identify(data, cfg.magic_bytes, describe=cfg.describe,
                        json_bytes=cfg.json_magic_bytes, reduced=cfg.reduced_magic)
        if not mime_allowed(info.mime, cfg.allowed_mime_types):
            ctx.findings.append(Finding("type.not_allowed", Severity.MEDIUM,
                                        f"type {info.mime} is not in the accepted types", None))
        self._check_hashes(sha256, md5, None, ctx)
        self._scan_object(data, name, None, 0, ctx, known=info)
        return FileResult(
            path=path if path is not None else name,
            sha256=sha256,
            md5=md5,
            size=len(data),
            mime=info.mime,
            description=info.description,
            findings=ctx.findings,
            ruleset_version=self._version,
        )

    def scan_paths(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        workers: int = 1,
        processes: bool = False,
    ) -> Iterator[tuple[str, FileResult | Exception]]:
        """Scan files (directories recursively) in order, ``workers`` at a time.

        Per-file errors are yielded, not raised, so one vanished file (``OSError``) or
        one input that trips a parser bug (any other exception) never stops a run.

        Threads are the default (YARA, hashing, zlib and libmagic release the GIL).
        ``processes=True`` forks worker processes instead, which scale better because the
        Python parts of the checks then run in parallel too; it is meant for command-line
        runs on POSIX (the compiled rules are inherited through ``fork``, not recompiled).
        Either way a file is read by the worker that scans it, so at most ``workers``
        files are in memory; up to ``QUEUE_PER_WORKER * workers`` paths are queued ahead,
        so that one large file at the head of the output order does not leave the other
        workers idle while it is scanned.
        """
        files = iter_files(paths)
        if workers <= 1:
            for file in files:
                yield file, self._try_scan(file)
            return
        # Forking a process that runs other threads can copy a lock held mid-operation
        # (logging, an HTTP pool) into the child, which then waits on it forever: fork
        # only from a single-threaded process, as the command line is.
        if (processes and "fork" in multiprocessing.get_all_start_methods()
                and threading.active_count() == 1):
            yield from self._scan_in_processes(files, workers)
            return
        with ThreadPoolExecutor(max_workers=workers) as pool:
            pending: deque[tuple[str, Future[FileResult | Exception]]] = deque()
            for file in files:
                pending.append((file, pool.submit(self._try_scan, file)))
                if len(pending) >= QUEUE_PER_WORKER * workers:
                    done_file, future = pending.popleft()
                    yield done_file, future.result()
            while pending:
                done_file, future = pending.popleft()
                yield done_file, future.result()

    def _scan_in_processes(
        self, files: Iterator[str], workers: int
    ) -> Iterator[tuple[str, FileResult | Exception]]:
        # libmagic's handles and the reduced database, made once here, reach every
        # worker through fork (about 40 ms of CPU each would otherwise spend on them).
        filetype.prepare(describe=self.config.describe, reduced=self.config.reduced_magic)
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_process,
                                 initargs=(self,)) as pool:
            # Paths go to the workers a few at a time: one task per file cost the parent
            # more in messages than printing the results.
            pending: deque[tuple[list[str], Future[list[FileResult | Exception]]]] = deque()
            for chunk in _chunks(files, FILES_PER_TASK):
                pending.append((chunk, pool.submit(_scan_chunk_in_process, chunk)))
                if len(pending) * FILES_PER_TASK >= QUEUE_PER_WORKER * workers:
                    done, future = pending.popleft()
                    yield from zip(done, future.result(), strict=True)
            while pending:
                done, future = pending.popleft()
                yield from zip(done, future.result(), strict=True)

    def _try_scan(self, file: str) -> FileResult | Exception:
        try:
            return self.scan_path(file)
        except Exception as exc:  # noqa: BLE001 - reported per file by the caller
            return exc

    def _check_hashes(self, sha256: str, md5: str, location: str | None, ctx: _Context) -> None:
        if sha256 in self.blocklist.sha256:
            ctx.findings.append(Finding("hash.blocklist.sha256", Severity.CRITICAL,
                                        f"SHA-256 {sha256} is on a blocklist", location))
        if md5 and md5 in self.blocklist.md5:
            ctx.findings.append(Finding("hash.blocklist.md5", Severity.CRITICAL,
                                        f"MD5 {md5} is on a blocklist", location))

    def _yara(self, data: bytes, location: str | None, ctx: _Context) -> dict[str, list[int]]:
        """Run the rules; findings go to ``ctx``, engine hints are returned by kind with
        the offsets of their matches (bundled rules with a ``hint`` meta, see
        :mod:`secops.scanning.powershell` and :mod:`secops.scanning.webshells`)."""
        hints: dict[str, list[int]] = {}
        try:
            matches = self.ruleset.rules.match(data=data, timeout=self.config.match_timeout)
        except yara.TimeoutError:
            ctx.findings.append(Finding("scan.timeout", Severity.MEDIUM,
                                        f"rule matching exceeded {self.config.match_timeout} s; "
                                        "content not fully scanned", location))
            return hints
        except yara.Error as exc:
            ctx.findings.append(Finding("scan.error", Severity.MEDIUM,
                                        f"rule matching failed: {exc}", location))
            return hints
        for match in matches:
            meta = match.meta
            if match.namespace.startswith("secops.") and meta.get("hint"):
                offsets = hints.setdefault(str(meta["hint"]), [])
                for string in match.strings:
                    # "$d" strings only qualify an object; the others anchor windows
                    if not string.identifier.startswith("$d"):
                        offsets.extend(i.offset for i in string.instances[:256])
                continue
            ctx.findings.append(Finding(
                f"yara.{match.rule}",
                Severity.parse(meta.get("severity")),
                str(meta.get("description") or match.rule),
                location,
            ))
        return hints

    def _script_checks(self, data: bytes, location: str | None, hints: dict[str, list[int]],
                       ctx: _Context, depth: int = 0) -> None:
        """PowerShell cradles and encoded commands, web shells (only where hinted)."""
        if "webshell" in hints:
            text = data[:webshells.MAX_TEXT].decode("latin-1")
            for shell in webshells.find_shells(text)[:1]:
                packed = "packed " if shell.packed else ""
                ctx.findings.append(Finding(
                    f"webshell.{shell.language.lower()}", Severity.CRITICAL,
                    f"{packed}{shell.language} web shell: {shell.sink}", location))
        if "powershell" not in hints and "psencoded" not in hints:
            return
        prefix = "decoded -EncodedCommand payload: " * depth
        payloads: list[str] = []
        cradle_found = "powershell" not in hints
        offsets = hints.get("powershell", []) + hints.get("psencoded", [])
        for view in powershell.text_views(data, offsets):
            if not cradle_found:
                for cradle in powershell.find_cradles(view)[:1]:
                    cradle_found = True
                    ctx.findings.append(Finding(
                        "powershell.download_cradle", Severity.CRITICAL,
                        f"{prefix}PowerShell {cradle.how}: {cradle.excerpt}", location))
            if "psencoded" in hints:
                for payload in powershell.encoded_commands(view):
                    if payload not in payloads:
                        payloads.append(payload)
        for payload in payloads[:powershell.MAX_PAYLOADS]:
            ctx.findings.append(Finding(
                "powershell.encoded_command", Severity.HIGH,
                f"{prefix}PowerShell -EncodedCommand payload decoded "
                f"({len(payload)} characters) and scanned", location))
            if depth < 2:
                # The payload is scanned like a file of its own: rules and script checks.
                decoded = payload.encode("utf-8")
                inner = _Context([], ctx.budget, fatal=ctx.fatal)
                inner_hints = self._yara(decoded, location, inner)
                self._script_checks(decoded, location, inner_hints, inner, depth + 1)
                ctx.findings.extend(
                    f if f.id.startswith("powershell.") else
                    Finding(f.id, f.severity, f"decoded -EncodedCommand payload: "
                            f"{f.description}", f.location)
                    for f in inner.findings)

    def _scan_object(
        self, data: bytes, name: str, location: str | None, depth: int, ctx: _Context,
        known: TypeInfo | None = None,
    ) -> None:
        cfg = self.config
        if known is not None:
            info = known
        elif (claim := name_claims_type(name)) is not None:
            # A member named as a text document (.txt, .csv, .log, ...) is checked only
            # for script content, whose markers (#!, <?php, @echo) open the file; libmagic's
            # text tests cost time in proportion to what they see.
            seen = cfg.magic_bytes if claim == BINARY_CLAIM else cfg.member_text_magic_bytes
            info = identify(data, seen, describe=False, reduced=cfg.reduced_magic)
        else:
            # A member whose name claims no checked type needs no libmagic call (the
            # slowest per-object step); executables are still found by their headers.
            info = TypeInfo("", "", describe_executable(data))
        ctx.findings.extend(type_findings(name, info, location, data))
        if location is not None and self.blocklist:
            self._check_hashes(hashlib.sha256(data).hexdigest(),
                               hashlib.md5(data, usedforsecurity=False).hexdigest(),
                               location, ctx)
        hints = self._yara(data, location, ctx)
        if hints:
            self._script_checks(data, location, hints, ctx)
        if documents.is_pdf(data):
            ctx.findings.extend(documents.pdf_findings(data, location))
        elif documents.is_ole(data):
            ctx.findings.extend(documents.ole_findings(data, name, location, ctx.fatal))
        container = location if location is not None else name
        kind = archive_kind(data)
        for appended, offset in documents.appended_archives(data):
            ctx.findings.append(Finding("polyglot.appended_archive", Severity.MEDIUM,
                                        f"{info.mime or 'file'} has a {appended} archive at "
                                        f"offset {offset}", location))
            if appended == ZIP:
                self._expand(ZIP, data, container, depth, ctx)
            elif appended == SEVENZIP:
                self._expand(SEVENZIP, data[offset:], container, depth, ctx)
        if location is not None and (info.executable is not None or _executable_name(name)):
            ctx.executables += 1
        if kind is not None:
            before = ctx.executables
            self._expand(kind, data, container, depth, ctx)
            if ctx.executables > before and _disguised_container(name):
                ctx.findings.append(Finding(
                    "type.disguised_container", Severity.HIGH,
                    f"{kind} archive named as .{_extension(name)} holds "
                    f"{ctx.executables - before} executable member(s)", location))
        elif (unexpanded := unexpanded_finding(data, location)) is not None:
            ctx.findings.append(unexpanded)

    def _expand(self, kind: str, data: bytes, container: str, depth: int, ctx: _Context) -> None:
        if depth >= self.config.max_depth:
            ctx.findings.append(Finding("archive.limit.depth", Severity.MEDIUM,
                                        f"archive nesting deeper than {self.config.max_depth}; "
                                        "not expanded", container))
            return
        vba_reported = False
        members = ctx.expander.members(kind, data, container)
        while True:
            try:
                member_name, member_data = next(members)
            except StopIteration:
                return
            except ctx.fatal:
                raise
            except Exception as exc:  # noqa: BLE001 - a parser bug must not hide the rest
                # Hostile archives reach corners of third-party parsers; an exception
                # there means the content was not fully scanned, which is suspicious.
                ctx.findings.append(Finding("scan.error", Severity.MEDIUM,
                                            f"{kind} could not be fully expanded: "
                                            f"{type(exc).__name__}: {exc}", container))
                return
            if member_name.lower().rsplit("/", 1)[-1] == "vbaproject.bin" and not vba_reported:
                vba_reported = True
                ctx.findings.append(Finding("document.ooxml.vba_project", Severity.MEDIUM,
                                            "OOXML document contains a VBA project",
                                            container))
            self._scan_object(member_data, member_name, f"{container}!{member_name}",
                              depth + 1, ctx)


def verdict_version(rules_version: str, blocklist: Blocklist) -> str:
    """The rules' version alone without blocklists; otherwise a SHA-256 over it and the
    sorted digests, so that adding a hash to a blocklist changes the version and a
    verdict cached under the old one is no longer reused."""
    if not blocklist:
        return rules_version
    digest = hashlib.sha256(b"secops-verdict-v1\0" + rules_version.encode() + b"\0")
    for kind, values in (("sha256", blocklist.sha256), ("md5", blocklist.md5)):
        digest.update(kind.encode() + b"\0")
        for value in sorted(values):
            digest.update(value.encode() + b"\n")
    return digest.hexdigest()


def _extension(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[-1].lower() if "." in base else ""


def _executable_name(name: str) -> bool:
    return _extension(name) in EXECUTABLE_EXTENSIONS


def _disguised_container(name: str) -> bool:
    """A name that presents an archive as a text or document file with no archive format
    of its own (.txt, .pdf, .jpg; not .docx, .xlsx or other zip-based documents)."""
    ext = _extension(name)
    return ext in DOCUMENT_EXTENSIONS and name_claims_type(name) is not None and (
        ext not in ARCHIVE_DOCUMENT_EXTENSIONS)


# Document formats that are archives by definition (OOXML, OpenDocument).
ARCHIVE_DOCUMENT_EXTENSIONS = frozenset("docx docm dotx xlsx xlsm pptx pptm odt ods odp".split())

_process_scanner: Scanner | None = None


def _init_process(scanner: Scanner) -> None:
    global _process_scanner
    _process_scanner = scanner


def _chunks(items: Iterator[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _scan_chunk_in_process(files: list[str]) -> list[FileResult | Exception]:
    return [_scan_in_process(file) for file in files]


def _scan_in_process(file: str) -> FileResult | Exception:
    assert _process_scanner is not None
    outcome = _process_scanner._try_scan(file)
    if isinstance(outcome, Exception) and not isinstance(outcome, OSError):
        # Arbitrary exceptions may not pickle; their text is what the caller reports.
        return RuntimeError(f"{type(outcome).__name__}: {outcome}")
    return outcome


def iter_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[str]:
    """Named files as given; directories walked recursively in sorted order.

    Symbolic links met inside a walked directory are skipped so a link loop or a link to
    ``/`` cannot make a run endless; a link named explicitly is scanned as its target.
    """
    for raw in paths:
        path = os.fspath(raw)
        if os.path.isdir(path) and not os.path.islink(path):
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not os.path.islink(os.path.join(root, d)))
                for entry in sorted(names):
                    full = os.path.join(root, entry)
                    if not os.path.islink(full):
                        yield full
        else:
            yield path


def scan_file(path: str | Path, config: ScanConfig | None = None) -> FileResult:
    """One-shot convenience for callers that scan a single file."""
    return Scanner(config).scan_path(path)
