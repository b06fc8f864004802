"""Scanning kinds: ``scan.file`` (a stored upload) and ``scan.directory`` (an allowlisted path).

Each handler reads its plan, ends the read transaction (on SQLite it holds the write
lock) before the slow part, scans without the database and records the outcome; the
job framework commits it with the job's completion, then publishes the alert
deliveries that outcome created. The work is in the services.
A ``scan.file`` job scans several files of one upload: a file that cannot be read or
trips a parser fails alone, the time limit fails the job.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from secops.config import get_settings
from secops.db.models import Job
from secops.services import directory_scans, scan_recording, scans
from secops.services.redisconn import get_redis
from secops.services.storage import get_store
from tasks.base import TIME_LIMITS, job_task
from tasks.dispatch import publish_after_commit


@job_task("scan.file")
def scan_file(session: Session, job: Job) -> dict[str, Any]:
    """Scan the job's stored files; quarantine the malicious ones; DLP them if configured."""
    settings = get_settings()
    scanner = scans.get_scanner(settings)
    plan = scan_recording.plan_file_scan(session=session, job=job,
                                         ruleset_version=scanner.ruleset_version)
    session.commit()
    store = get_store(settings)
    executed = scan_recording.execute_file_scans(plan, store=store, scanner=scanner,
                                                 dlp_on_scan=settings.dlp_on_scan,
                                                 settings=settings,
                                                 fatal=TIME_LIMITS)
    recorded = scan_recording.record_file_scans(session=session, plan=plan, executed=executed,
                                                store=store,
                                                kv=get_redis() if plan.files else None)
    publish_after_commit(session, recorded.deliveries)
    return recorded.summary


@job_task("scan.directory")
def scan_directory(session: Session, job: Job) -> dict[str, Any]:
    """Scan the new or changed files under an allowlisted directory."""
    settings = get_settings()
    scanner = scans.get_scanner(settings)
    plan = directory_scans.plan_directory_scan(
        session=session, path=str(job.params["path"]), allowed=settings.scan_allowed_dirs,
        max_files=settings.scan_directory_max_files)
    session.commit()
    outcomes = directory_scans.execute_directory_scan(plan, scanner=scanner)
    summary, deliveries = directory_scans.record_directory_scan(
        session=session, job=job, plan=plan, outcomes=outcomes, kv=get_redis())
    publish_after_commit(session, deliveries)
    return summary
