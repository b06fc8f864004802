"""Privacy kinds: ``privacy.export``, ``privacy.erase`` and ``privacy.rectify`` (with
their per-store ``privacy.export_store``, ``privacy.erase_store`` and
``privacy.rectify_store`` sub-jobs), ``privacy.retention`` on the ``privacy`` queue, and
the due-date check beat sends (``privacy.deadlines``).

Each handler calls one service function with the request id. They are idempotent: a
request that is no longer in progress returns its stored result, and an erasure that
runs again finds nothing left to erase. A request job that fails for good fails its
request (``request_failed``); ``privacy.deadlines`` also sweeps requests whose jobs are
all final.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from secops.config import get_settings
from secops.db.models import Job
from secops.db.session import session_scope
from secops.services import breaches, privacy, privacy_jobs
from secops.services.redisconn import get_redis
from secops.services.storage import get_store
from tasks.app import app
from tasks.base import job_task
from tasks.dispatch import after_commit, enqueue_or_fail, publish_after_commit
from tasks.routing import PRIVACY_DEADLINES_TASK


def request_failed(job_id: str) -> None:
    """A request's job failed for good: fail the request, delete orphaned export parts."""
    settings = get_settings()
    with session_scope() as session:
        deliveries, parts = privacy_jobs.job_failed(session=session, job_id=job_id, kv=get_redis())
    blobs = get_store(settings)
    for sha in parts:
        blobs.delete(sha)
    enqueue_or_fail(deliveries)


def _fan_out(session: Session, job: Job, kind: str) -> dict[str, Any]:
    """One sub-job of ``kind`` per store of the request, published once this job commits."""
    result, children = privacy_jobs.fan_out(
        session=session, settings=get_settings(), request_id=job.params["request_id"], job_id=job.id,
        kind=kind,
    )
    publish_after_commit(session, children)
    return result


@job_task("privacy.export", on_failure=request_failed)
def export(session: Session, job: Job) -> dict[str, Any]:
    """Fan a verified access request out into one ``privacy.export_store`` sub-job per store."""
    return _fan_out(session, job, privacy_jobs.EXPORT_STORE_KIND)


@job_task("privacy.export_store", on_failure=request_failed)
def export_store(session: Session, job: Job) -> dict[str, Any]:
    """Export one store; the last sub-job to finish builds and stores the bundle."""
    settings = get_settings()
    blobs = get_store(settings)
    result, parts = privacy_jobs.run_export_store(
        session=session, settings=settings, blobs=blobs, request_id=job.params["request_id"],
        store_name=job.params["store"], job_id=job.id,
    )
    # the parts go once the bundle built from them is committed
    after_commit(session, lambda: [blobs.delete(sha) for sha in parts])
    return result


@job_task("privacy.erase", on_failure=request_failed)
def erase(session: Session, job: Job) -> dict[str, Any]:
    """Fan a verified erasure out into one ``privacy.erase_store`` sub-job per store."""
    return _fan_out(session, job, privacy_jobs.ERASE_STORE_KIND)


@job_task("privacy.erase_store", on_failure=request_failed)
def erase_store(session: Session, job: Job) -> dict[str, Any]:
    """Erase and verify one store; the last sub-job to finish signs the receipt."""
    result, deliveries = privacy_jobs.run_erase_store(
        session=session,
        settings=get_settings(),
        request_id=job.params["request_id"],
        store_name=job.params["store"],
        job_id=job.id,
        kv=get_redis(),
    )
    publish_after_commit(session, deliveries)
    return result


@job_task("privacy.rectify", on_failure=request_failed)
def rectify(session: Session, job: Job) -> dict[str, Any]:
    """Fan a verified rectification out into one ``privacy.rectify_store`` sub-job per
    store it names."""
    return _fan_out(session, job, privacy_jobs.RECTIFY_STORE_KIND)


@job_task("privacy.rectify_store", on_failure=request_failed)
def rectify_store(session: Session, job: Job) -> dict[str, Any]:
    """Rectify one store; the last sub-job to finish names the recipients (Art 19)."""
    return privacy_jobs.run_rectify_store(
        session=session, settings=get_settings(), request_id=job.params["request_id"],
        store_name=job.params["store"], job_id=job.id,
    )


@job_task("privacy.retention")
def retention(session: Session, job: Job) -> dict[str, Any]:
    """Apply each table's retention_days (a dry run only counts)."""
    return privacy_jobs.run_retention(
        session=session, settings=get_settings(), dry_run=job.params["dry_run"], job_id=job.id
    )


@app.task(name=PRIVACY_DEADLINES_TASK, ignore_result=True)
def deadlines() -> None:
    """Raise due-soon and overdue events for open requests and breach clocks (alerts);
    delete bundles whose download link ran out; fail or complete requests whose jobs
    are all final."""
    settings, kv = get_settings(), get_redis()
    blobs = get_store(settings)
    with session_scope() as session:
        deliveries, parts = privacy_jobs.reconcile(session=session, settings=settings, blobs=blobs, kv=kv)
    for sha in parts:
        blobs.delete(sha)
    with session_scope() as session:
        deliveries += privacy.check_deadlines(session=session, settings=settings, kv=kv)
        deliveries += breaches.check_clocks(session=session, settings=settings, kv=kv)
        privacy_jobs.expire_bundles(session=session, store=blobs)
    enqueue_or_fail(deliveries)
