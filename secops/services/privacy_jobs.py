"""The work of verified data subject requests, as the privacy jobs run it.

``privacy.export`` fans out one ``privacy.export_store`` sub-job per store, each storing
its store's part encrypted, and the last to finish bundles (DLP-checked) and stores the
bundle encrypted;
:func:`download` hands it out once; ``privacy.erase`` fans out one ``privacy.erase_store``
sub-job per store, each erasing and verifying its store, and the last to finish signs;
``privacy.rectify`` rectifies and names the Art 19 recipients; ``privacy.retention``
applies the map's retention. Each job is idempotent: a request that is no longer
``in_progress`` returns its stored result. See :mod:`secops.services.privacy` for the
requests themselves.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from secops.config import Settings
from secops.db.base import utcnow
from secops.db.models import Job, JobStatus, PrivacyRequest
from secops.errors import ConfigurationError, Conflict, InvalidInput, NotFound, Unavailable
from secops.kinds import KINDS
from secops.privacy import receipt_body, subject_hash
from secops.privacy.bundle import build_bundle
from secops.privacy.datamap import DataMap
from secops.privacy.erase import ErasureResult, erase_one_store, outcome_from_dict, outcome_to_dict
from secops.privacy.export import export_store
from secops.privacy.receipt import load_private_key, sign
from secops.privacy.rectify import rectify_subject
from secops.privacy.retention import apply_retention
from secops.services import audit, monitor
from secops.services.audit import AuditContext
from secops.services.privacy import (
    _mac,
    _transition,
    datamap,
    get_request,
    hash_key,
    shared_connector,
    unseal,
)
from secops.services.storage import BlobStore

ERASE_STORE_KIND = "privacy.erase_store"
EXPORT_STORE_KIND = "privacy.export_store"


def _job_ctx(job_id: str) -> AuditContext:
    return AuditContext(actor=f"job:{job_id}")


def _finish(session: Session, req: PrivacyRequest, status: str, job_id: str, result: dict[str, Any]) -> None:
    req.result, req.completed_at = result, utcnow()
    req.sealed = None  # the subject's identities are not kept past the request
    _transition(session, req, status, _job_ctx(job_id))


def download(
    *,
    session: Session,
    store: BlobStore,
    settings: Settings,
    req: PrivacyRequest,
    token: str,
    ctx: AuditContext,
    now: dt.datetime | None = None,
) -> bytes:
    """The bundle, once, before its link expires; afterwards it is deleted."""
    now = now or utcnow()
    expected = _mac(hash_key(settings), f"download:{req.id}:{token}")
    if req.download_hash is None or not hmac.compare_digest(expected, req.download_hash):
        raise NotFound("no such download")
    if req.bundle_sha256 is None:
        raise Conflict("the bundle is not ready yet")
    if req.downloaded_at is not None or (
        req.download_expires_at is not None and req.download_expires_at <= now
    ):
        raise NotFound("no such download")
    data = store.read(req.bundle_sha256)
    req.downloaded_at = now
    req.download_hash = None
    audit.record(
        session=session,
        ctx=ctx,
        action="privacy.bundle.downloaded",
        target=f"privacy_request:{req.id}",
        details={"bundle_sha256": req.bundle_sha256, "bytes": len(data)},
    )
    return data


def drop_bundle(store: BlobStore, sha256: str) -> None:
    store.delete(sha256)


def fan_out(
    *, session: Session, settings: Settings, request_id: str, job_id: str, kind: str
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Create one sub-job of ``kind`` (``privacy.erase_store``, ``privacy.export_store``)
    per store of the map; the caller publishes them after the commit. The request keeps
    their ids (``result.sub_jobs``) while it is in progress; a second delivery finds them
    there and creates none."""
    req = get_request(session=session, request_id=request_id)
    if req.status != "in_progress":
        return req.result or {"status": req.status}, []
    existing = (req.result or {}).get("sub_jobs")
    if existing:  # a second delivery: the sub-jobs exist (the reaper re-publishes lost ones)
        return {"sub_jobs": existing}, []
    if kind == ERASE_STORE_KIND and settings.privacy_signing_key is None:
        raise ConfigurationError("secret privacy_signing_key is not set")
    children = {
        name: Job(kind=kind, params=KINDS[kind].validate({"request_id": req.id, "store": name}),
                  status=JobStatus.queued.value, attempts=0, submitted_by=req.submitted_by)
        for name in datamap(settings).stores
    }
    session.add_all(children.values())
    session.flush()
    sub_jobs = {name: child.id for name, child in children.items()}
    req.result = {"sub_jobs": sub_jobs}
    audit.record(session=session, ctx=_job_ctx(job_id), action="privacy.request.fanned_out",
                 target=f"privacy_request:{req.id}", details={"kind": kind, "sub_jobs": sub_jobs})
    return {"sub_jobs": sub_jobs}, [(child.id, kind) for child in children.values()]


def _siblings_done(
    session: Session, request_id: str, job_id: str
) -> tuple[PrivacyRequest, dict[str, str], dict[str, dict[str, Any]]] | None:
    """Under the request's row lock (SQLite: the write lock): the request, its sub-jobs and
    the siblings' results, if every sibling succeeded and the request is still open."""
    req = session.execute(
        select(PrivacyRequest).where(PrivacyRequest.id == request_id).with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()
    if req.status != "in_progress":
        return None
    sub_jobs: dict[str, str] = (req.result or {}).get("sub_jobs", {})
    siblings = [row for row in session.execute(
        select(Job.id, Job.status, Job.result).where(Job.id.in_(list(sub_jobs.values())))
    ) if row.id != job_id]
    if any(row.status != "succeeded" for row in siblings):
        return None  # a sibling still runs (or failed): it is not this sub-job's turn
    return req, sub_jobs, {row.result["store"]: row.result for row in siblings}


def run_export_store(
    *, session: Session, settings: Settings, blobs: BlobStore, request_id: str, store_name: str,
    job_id: str,
) -> tuple[dict[str, Any], list[str]]:
    """Export one store into an encrypted part in the file store; the sub-job that finds
    all its siblings succeeded builds the bundle from every part (DLP-checked), stores it
    and completes the request. Returns the result and the parts to delete after the commit."""
    req = get_request(session=session, request_id=request_id)
    if req.status != "in_progress" or req.sealed is None:
        return {"store": store_name, "request_status": req.status}, []
    subject = unseal(settings, req)["identities"]
    session.rollback()  # no platform database transaction while the store is read
    dm = datamap(settings)
    store = dm.stores.get(store_name)
    if store is None:
        raise InvalidInput(f"store {store_name!r} is no longer in the personal-data map")
    part = export_store(store, subject, shared_connector(settings))
    data = json.dumps({"request_id": request_id, "store": store_name, **part}).encode("utf-8")
    staged = blobs.stage_bytes(data, f"privacy-{request_id}-{store_name}.json")
    blobs.commit(staged)
    sha = staged.sha256
    mine = {"store": store_name, "part_sha256": sha, "records": len(part["records"]),
            "mentions": len(part["mentions"])}
    done = _siblings_done(session, request_id, job_id)
    if done is None:
        return mine, []
    req, sub_jobs, records = done
    parts = [({**records, store_name: mine})[name] for name in sub_jobs]
    export: dict[str, Any] = {"subject": dict(subject), "records": [], "mentions": []}
    for p in parts:
        stored = json.loads(blobs.read(p["part_sha256"]))
        export["records"].extend(stored["records"])
        export["mentions"].extend(stored["mentions"])
    bundle, manifest = build_bundle(dm, export, created_at=utcnow().isoformat())
    staged = blobs.stage_bytes(bundle, f"privacy-{req.id}.zip")
    blobs.commit(staged)
    req.bundle_sha256 = staged.sha256
    req.download_expires_at = utcnow() + dt.timedelta(seconds=settings.privacy_download_ttl)
    result = {
        "records": len(export["records"]),
        "mentions": len(export["mentions"]),
        "files": len(manifest["files"]),
        "third_party_findings": len(manifest["third_party_findings"]),
        "bundle_sha256": req.bundle_sha256,
        "sub_jobs": sub_jobs,
    }
    _finish(session, req, "completed", job_id, result)
    return mine, [p["part_sha256"] for p in parts]


def run_erase_store(
    *, session: Session, settings: Settings, request_id: str, store_name: str, job_id: str,
    kv: redis.Redis | None = None,
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Erase and verify one store; the sub-job that finds all its siblings succeeded
    completes the request (under the request's row lock) with the signed receipt.

    A store that failed makes the sub-job retry; a re-run finds nothing left to erase."""
    req = get_request(session=session, request_id=request_id)
    if req.status != "in_progress" or req.sealed is None:
        return {"store": store_name, "request_status": req.status}, []
    subject = unseal(settings, req)["identities"]
    # End the read before the store is worked on: no platform database transaction (on
    # SQLite, its write lock) is held while a user's store is slow.
    session.rollback()
    dm = datamap(settings)
    store = dm.stores.get(store_name)
    if store is None:
        raise InvalidInput(f"store {store_name!r} is no longer in the personal-data map")
    started = utcnow()
    outcome = erase_one_store(store, subject, shared_connector(settings), key=hash_key(settings))
    if outcome.status != "committed":
        raise Unavailable(f"erasure rolled back in store {store_name}; retrying")
    mine = {**outcome_to_dict(outcome), "started_at": _iso(started), "completed_at": _iso(utcnow())}
    done = _siblings_done(session, request_id, job_id)
    if done is None:
        return mine, []
    req, sub_jobs, records = done
    records = {**records, store_name: mine}
    return mine, _complete_erasure(session, settings, req, dm, subject, records, sub_jobs, job_id, kv)


def _complete_erasure(
    session: Session, settings: Settings, req: PrivacyRequest, dm: DataMap, subject: dict[str, str],
    records: dict[str, dict[str, Any]], sub_jobs: dict[str, str], job_id: str, kv: redis.Redis | None,
) -> list[tuple[str, str]]:
    assert settings.privacy_signing_key is not None
    signer = load_private_key(settings.privacy_signing_key.get_secret_value())
    ordered = [records[name] for name in sub_jobs if name in records]
    result = ErasureResult(
        subject_hash=subject_hash(hash_key(settings), subject),
        started_at=min(r["started_at"] for r in ordered),
        completed_at=max(r["completed_at"] for r in ordered),
        stores=[outcome_from_dict(r) for r in ordered],
    )
    receipt = sign(receipt_body(result, dm, subject), signer)
    summary = {
        "verified": result.verified,
        "actions": [a.to_dict() for a in result.actions],
        "receipt": receipt,
        "sub_jobs": sub_jobs,
    }
    _finish(session, req, "completed" if result.verified else "needs_review", job_id, summary)
    outcome = monitor.log_security_event(
        "privacy.erasure",
        {"request_id": req.id, "verified": result.verified, "rows": sum(a.rows for a in result.actions)},
        "low" if result.verified else "high",
        session=session,
        kv=kv,
    )
    return outcome.deliveries


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def run_rectify(*, session: Session, settings: Settings, request_id: str, job_id: str) -> dict[str, Any]:
    req = get_request(session=session, request_id=request_id)
    if req.status != "in_progress":
        return req.result or {"status": req.status}
    dm = datamap(settings)
    sealed = unseal(settings, req)
    connector = shared_connector(settings)
    changes, recipients = rectify_subject(dm, sealed["identities"], sealed["rectification"], connector)
    result = {"changes": [c.to_dict() for c in changes], "recipients_to_notify": recipients}
    _finish(session, req, "completed", job_id, result)
    return result


def run_retention(
    *, session: Session, settings: Settings, dry_run: bool, job_id: str, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Apply the map's retention (or count it, for a dry run); audited."""
    dm = datamap(settings)
    connector = shared_connector(settings)
    outcomes = apply_retention(dm, connector, key=hash_key(settings), now=now or utcnow(), dry_run=dry_run)
    result = {"dry_run": dry_run, "stores": [o.to_dict() for o in outcomes]}
    audit.record(
        session=session,
        ctx=_job_ctx(job_id),
        action="privacy.retention",
        target=f"job:{job_id}",
        details={
            "dry_run": dry_run,
            "rows": sum(a.rows for o in outcomes for a in o.actions),
            "failed": [o.store for o in outcomes if o.status in ("rolled_back", "unavailable")],
        },
    )
    return result


def expire_bundles(*, session: Session, store: BlobStore, now: dt.datetime | None = None) -> int:
    """Delete bundles whose link ran out before anyone downloaded them; audited."""
    from sqlalchemy import select

    now = now or utcnow()
    expired = session.scalars(
        select(PrivacyRequest).where(
            PrivacyRequest.bundle_sha256.is_not(None),
            PrivacyRequest.downloaded_at.is_(None),
            PrivacyRequest.download_expires_at < now,
        )
    )
    count = 0
    for req in expired:
        sha256, req.bundle_sha256, req.download_hash = req.bundle_sha256, None, None
        assert sha256 is not None
        store.delete(sha256)
        audit.record(
            session=session,
            ctx=AuditContext(actor="system:privacy"),
            action="privacy.bundle.expired",
            target=f"privacy_request:{req.id}",
            details={"bundle_sha256": sha256},
        )
        count += 1
    return count
