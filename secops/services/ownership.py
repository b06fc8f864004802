"""What a service key may name in job parameters: only objects it submitted itself.

Service keys see only their own jobs, scans and DLP scans; the parameters of the jobs
they submit (``scan_id``, ``scan_ids``, ``dlp_scan_id``, ``sha256``) and the stored file a
DLP scan names must stay within the same fence, or a job would read another tenant's
file or answer with another tenant's scan. A stored file is a service key's when one of
its own scans (file or DLP) holds that content. Anything else is "not found", exactly
as when it does not exist.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from secops.db.models import DlpScan, ScanResult
from secops.errors import NotFound


def owns_content(*, session: Session, actor: str, sha256: str) -> bool:
    """Whether ``actor`` submitted a scan or DLP scan of this content."""
    return bool(session.scalar(select(
        exists().where(ScanResult.sha256 == sha256, ScanResult.submitted_by == actor)
        | exists().where(DlpScan.sha256 == sha256, DlpScan.submitted_by == actor))))


def check_content(*, session: Session, actor: str, sha256: str) -> None:
    if not owns_content(session=session, actor=actor, sha256=sha256):
        raise NotFound("stored file not found")


def check_job_params(*, session: Session, actor: str, params: dict[str, Any]) -> None:
    """Refuse (as not found) job parameters naming another submitter's objects."""
    scan_ids = list(params.get("scan_ids") or [])
    if params.get("scan_id"):
        scan_ids.append(params["scan_id"])
    if scan_ids:
        wanted = {str(s) for s in scan_ids}
        own = session.scalar(select(func.count()).select_from(ScanResult).where(
            ScanResult.id.in_(wanted), ScanResult.submitted_by == actor))
        if own != len(wanted):
            raise NotFound("scan not found")
    if params.get("dlp_scan_id"):
        scan = session.get(DlpScan, str(params["dlp_scan_id"]))
        if scan is None or scan.submitted_by != actor:
            raise NotFound("DLP scan not found")
    if params.get("sha256"):
        check_content(session=session, actor=actor, sha256=str(params["sha256"]))
