"""Directory scans (``scan.directory``): allowlisted paths, only new or changed files.

The directory must lie under ``SECOPS_SCAN_ALLOWED_DIRS`` (checked after resolving
symlinks, at submission and again on the worker). The walk never follows symlinks and
skips anything that is not a regular file. ``scanned_paths`` remembers, per path, the
size, modification time and SHA-256 of the last scan: a file whose size and mtime are
unchanged is skipped without being read; one whose content hash is unchanged (only
touched) is not scanned again. Files that disappeared are forgotten. Like the file job,
it runs as plan (database), execute (filesystem and engine, no transaction) and record.
Files on disk are reported, never moved: quarantine applies to uploaded files. Scan
suppressions in force apply as they do to uploads (matched by content hash, and by the
file's full path or name where a suppression has a path pattern); they take effect on a
file's next scan, i.e. once its content changes.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from secops.db.base import utcnow
from secops.db.models import Job, ScannedPath, ScanResult
from secops.dlp.baseline import Suppression, filter_scan
from secops.errors import InvalidInput
from secops.kinds import allowed_directory
from secops.scanning import FileResult, Scanner
from secops.services import monitor, suppressions
from secops.services.scans import events_for, finding_rows, findings_of

QUERY_BATCH = 500


def path_hash(path: str) -> str:
    return hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True)
class Seen:
    path: str
    size: int
    mtime_ns: int


@dataclass
class DirectoryPlan:
    root: str
    changed: list[Seen] = field(default_factory=list)
    previous_sha: dict[str, str] = field(default_factory=dict)
    unchanged: int = 0
    vanished: list[int] = field(default_factory=list)
    skipped: int = 0
    truncated: bool = False
    # Scan suppressions in force (contents are unknown until read: all of them, usually few)
    suppressions: list[Suppression] = field(default_factory=list)


def _walk(root: Path, limit: int) -> tuple[list[Seen], int, bool]:
    seen: list[Seen] = []
    skipped = 0
    for directory, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(directory, name)
            try:
                info = os.lstat(full)
            except OSError:
                skipped += 1
                continue
            if not stat.S_ISREG(info.st_mode):
                skipped += 1  # symlinks, sockets, devices: never followed or read
                continue
            if len(seen) >= limit:
                return seen, skipped, True
            seen.append(Seen(full, info.st_size, info.st_mtime_ns))
    return seen, skipped, False


def plan_directory_scan(*, session: Session, path: str, allowed: list[Path],
                        max_files: int) -> DirectoryPlan:
    try:
        root = allowed_directory(path, allowed)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    if not root.is_dir():
        raise InvalidInput("path is not a directory")
    seen, skipped, truncated = _walk(root, max_files)
    plan = DirectoryPlan(str(root), skipped=skipped, truncated=truncated)
    by_hash = {path_hash(s.path): s for s in seen}
    known: dict[str, ScannedPath] = {}
    hashes = list(by_hash)
    for i in range(0, len(hashes), QUERY_BATCH):
        batch = hashes[i : i + QUERY_BATCH]
        for found in session.scalars(select(ScannedPath).where(ScannedPath.path_hash.in_(batch))):
            known[found.path_hash] = found
    for digest, item in by_hash.items():
        row = known.get(digest)
        if row is not None and row.size == item.size and row.mtime_ns == item.mtime_ns:
            plan.unchanged += 1
            continue
        if row is not None:
            plan.previous_sha[item.path] = row.sha256
        plan.changed.append(item)
    if not truncated:
        prefix = str(root).rstrip(os.sep) + os.sep
        for row_id, row_path in session.execute(
                select(ScannedPath.id, ScannedPath.path)
                .where(ScannedPath.path.startswith(prefix, autoescape=True))):
            if path_hash(row_path) not in by_hash:
                plan.vanished.append(row_id)
    if plan.changed:
        plan.suppressions = suppressions.active_rules(session=session, family="scan")
    return plan


@dataclass
class Outcome:
    seen: Seen
    result: FileResult | None = None
    error: str | None = None
    suppressed: int = 0  # findings dropped by scan suppressions


def execute_directory_scan(plan: DirectoryPlan, *, scanner: Scanner) -> list[Outcome]:
    out: list[Outcome] = []
    for item in plan.changed:
        try:
            # never through a link: the walk saw a regular file, but it may have been
            # swapped for a symbolic link (or its directory for one) since
            result, suppressed = filter_scan(scanner.scan_path(item.path, within=plan.root),
                                             plan.suppressions, item.path)
            out.append(Outcome(item, result, suppressed=suppressed))
        except OSError as exc:
            out.append(Outcome(item, error=exc.strerror or type(exc).__name__))
    return out


def record_directory_scan(*, session: Session, job: Job, plan: DirectoryPlan,
                          outcomes: list[Outcome], kv: redis.Redis | None
                          ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    now = utcnow()
    counts = {"clean": 0, "suspicious": 0, "malicious": 0}
    scan_ids: list[str] = []
    deliveries: list[tuple[str, str]] = []
    errors = 0
    content_unchanged = 0
    if plan.vanished:
        session.execute(delete(ScannedPath).where(ScannedPath.id.in_(plan.vanished)))
    for outcome in outcomes:
        item, result = outcome.seen, outcome.result
        if result is None:
            errors += 1
            continue
        digest = path_hash(item.path)
        row = session.scalar(select(ScannedPath).where(ScannedPath.path_hash == digest))
        if row is None:
            row = ScannedPath(path_hash=digest, path=item.path, sha256=result.sha256,
                              size=item.size, mtime_ns=item.mtime_ns, scanned_at=now)
            session.add(row)
        row.size, row.mtime_ns, row.scanned_at = item.size, item.mtime_ns, now
        if plan.previous_sha.get(item.path) == result.sha256:
            content_unchanged += 1  # only touched: same content, already scanned
            row.sha256 = result.sha256
            continue
        scan = ScanResult(job_id=job.id, sha256=result.sha256, filename=os.path.basename(item.path)[:255],
                          size=result.size, source="directory", path=item.path, status="complete",
                          verdict=result.verdict.value, mime=result.mime[:128],
                          description=result.description[:500],
                          ruleset_version=result.ruleset_version, cached=False,
                          submitted_by=job.submitted_by, created_at=now, completed_at=now)
        session.add(scan)
        session.flush()
        rows = findings_of(result)
        session.add_all(finding_rows(scan.id, rows))
        row.sha256, row.scan_id = result.sha256, scan.id
        counts[result.verdict.value] += 1
        scan_ids.append(scan.id)
        for kind, details, severity in events_for(scan, rows):
            deliveries.extend(monitor.log_security_event(kind, details, severity, session=session,
                                                         kv=kv).deliveries)
    summary = {"path": plan.root, "scanned": len(scan_ids), "unchanged": plan.unchanged,
               "content_unchanged": content_unchanged, "vanished": len(plan.vanished),
               "skipped": plan.skipped, "errors": errors, "truncated": plan.truncated,
               "verdicts": counts, "scan_ids": scan_ids[:100]}
    if dropped := sum(o.suppressed for o in outcomes):
        summary["suppressed"] = dropped
    return summary, deliveries
