"""DLP uploads go through file scanning first: the type checks and the malware scan.

A file uploaded to ``POST /v1/dlp/scans`` gets a scan record beside its DLP scan (see
:func:`secops.services.dlp.submit_upload`). Its ``dlp.classify`` job scans it with the
scanning services (:mod:`secops.services.scan_recording`, the same scanner, type checks,
suppressions, quarantine and security events as a ``scan.file`` job) and classifies it
only when the verdict is not malicious; a malicious file is quarantined and its DLP scan
fails with the reason, which the submitter reads in the DLP scan and the job's result.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import redis
from sqlalchemy.orm import Session

from secops.config import Settings
from secops.scanning import Verdict
from secops.services import dlp, scan_recording, scans, suppressions
from secops.services.scan_recording import Executed, FilePlan, JobPlan
from secops.services.storage import BlobStore


def plan_check(*, session: Session, plan: dlp.ClassifyPlan) -> JobPlan | None:
    """The file scan a DLP upload still needs (None for text, stored files, or once done)."""
    if plan.done is not None or plan.source != "upload":
        return None
    scan = dlp.get_scan(session=session, dlp_scan_id=plan.dlp_scan_id)
    if scan.scan_id is None:
        return None
    views = scan_recording.scan_views(session, [scan.scan_id])
    view = views.get(scan.scan_id)
    if view is None or view.status != "pending":
        return None
    check = JobPlan(files=[FilePlan(view.id, view.sha256, view.filename)])
    check.suppressions = suppressions.active_rules(
        session=session, family="scan", sha256s=[view.sha256])
    return check


def execute_check(check: JobPlan, *, store: BlobStore, settings: Settings) -> Executed:
    """Scan the upload and, unless it is malicious, classify it (no database)."""
    [file] = check.files
    return scan_recording.execute_file_scan(
        file, store=store, scanner=scans.get_scanner(settings), dlp_on_scan=True,
        settings=settings, rules=check.suppressions)


def record_check(*, session: Session, plan: dlp.ClassifyPlan, check: JobPlan, executed: Executed,
                 store: BlobStore, kv: redis.Redis | None
                 ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Record the file's scan as a ``scan.file`` job would, then the DLP outcome."""
    recorded = scan_recording.record_file_scans(
        session=session, plan=check, store=store, kv=kv,
        executed=[replace(executed, document=None, dlp_error=None)])
    file_summary = recorded.summary
    result = executed.result
    if result is None:
        summary = dlp.reject(session=session, plan=plan,
                             reason=f"the file could not be scanned: {executed.error or 'unreadable'}")
    elif result.verdict is Verdict.MALICIOUS:
        rules = sorted({f.id for f in result.findings})[:5]
        summary = dlp.reject(session=session, plan=plan, reason=(
            "refused: the file is malicious (" + ", ".join(rules) + ")"
            + ("; it is quarantined" if file_summary.get("quarantined") else "")))
    else:
        summary, deliveries = dlp.record_classification(
            session=session, plan=plan, document=executed.document, error=executed.dlp_error,
            kv=kv, store=store)
        recorded.deliveries.extend(deliveries)
    summary["file_scan"] = {key: file_summary.get(key) for key in
                            ("scan_id", "verdict", "quarantined", "suppressed")}
    if file_summary.get("quarantined"):
        summary["quarantined"] = True
    return summary, recorded.deliveries
