"""The work of verified data subject requests, as the privacy jobs run it.

``privacy.export``, ``privacy.erase`` and ``privacy.rectify`` each fan out one sub-job
per store (``privacy.export_store``, ``privacy.erase_store``, ``privacy.rectify_store``);
the last sub-job to finish completes the request under its row lock: an export's builds
the bundle from the stores' encrypted parts (DLP-checked) and stores it encrypted
(:func:`download` hands it out once), an erasure's signs the receipt, a rectification's
names the Art 19 recipients. ``privacy.retention`` applies the map's retention.

A sub-job (or the fan-out) that gives up fails its request (:func:`job_failed`):
``failed`` with the store and the job's sanitised error, a ``privacy.request_failed``
security event (an alert), the export parts of the other stores deleted, the
identities kept so that the DPO can :func:`retry` it. :func:`reconcile` (run by
``privacy.deadlines``) finds requests whose jobs are all final but which are still in
progress, and fails or completes them.

An erasure sub-job writes a record of its store transaction just before the store
commits (:class:`~secops.db.models.PrivacyStoreErasure`): a run that takes over from a
killed worker learns from the rows whether that transaction committed, and the receipt
counts every committed transaction once. Each job is idempotent: a request that is no
longer ``in_progress`` returns its stored result. See :mod:`secops.services.privacy` for
the requests themselves.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
from typing import Any

import redis
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from secops.config import Settings
from secops.db.base import utcnow
from secops.db.models import Job, JobStatus, PrivacyRequest, PrivacyStoreErasure
from secops.errors import ConfigurationError, Conflict, InvalidInput, NotFound, Unavailable
from secops.kinds import KINDS
from secops.privacy import receipt_body, subject_hash
from secops.privacy.bundle import build_bundle
from secops.privacy.datamap import DataMap
from secops.privacy.erase import (
    Action,
    Changed,
    ErasureResult,
    erase_one_store,
    merge_actions,
    outcome_from_dict,
    outcome_to_dict,
    transaction_committed,
)
from secops.privacy.export import export_store, jsonable
from secops.privacy.receipt import load_private_key, sign
from secops.privacy.rectify import parse_updates, recipients, rectify_store
from secops.privacy.retention import apply_retention
from secops.services import audit, monitor
from secops.services.audit import AuditContext
from secops.services.privacy import (
    _mac,
    _transition,
    datamap,
    get_request,
    hash_key,
    seal,
    shared_connector,
    unseal,
)
from secops.services.storage import BlobStore

ERASE_STORE_KIND = "privacy.erase_store"
EXPORT_STORE_KIND = "privacy.export_store"
RECTIFY_STORE_KIND = "privacy.rectify_store"
SUB_KINDS = {"privacy.erase": ERASE_STORE_KIND, "privacy.export": EXPORT_STORE_KIND,
             "privacy.rectify": RECTIFY_STORE_KIND}
FAILED = "privacy.request_failed"
FINAL = (JobStatus.succeeded.value, JobStatus.failed.value, JobStatus.cancelled.value)
MAX_REASON = 300
monitor.register_rule(monitor.AlertRule(
    FAILED, frozenset({FAILED}), "request_id", 0, 86400, "high",
    "a data subject request failed: a store could not be worked on (retry it once fixed)"))


def _job_ctx(job_id: str) -> AuditContext:
    return AuditContext(actor=f"job:{job_id}")


def _finish(session: Session, req: PrivacyRequest, status: str, job_id: str, result: dict[str, Any]) -> None:
    req.result, req.completed_at = result, utcnow()
    req.sealed = None  # the subject's identities are not kept past the request
    session.execute(delete(PrivacyStoreErasure).where(PrivacyStoreErasure.request_id == req.id))
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


def _store_names(settings: Settings, req: PrivacyRequest, kind: str) -> list[str]:
    """The stores a request's sub-jobs work on: every store of the map; for a
    rectification only the stores its updates name."""
    names = list(datamap(settings).stores)
    if kind == RECTIFY_STORE_KIND:
        updates = unseal(settings, req)["rectification"]
        named = {store for store, _, _ in parse_updates(datamap(settings), updates)}
        names = [name for name in names if name in named]
    return names


def _sub_jobs(req: PrivacyRequest, kind: str, stores: list[str]) -> dict[str, Job]:
    return {
        name: Job(kind=kind, params=KINDS[kind].validate({"request_id": req.id, "store": name}),
                  status=JobStatus.queued.value, attempts=0, submitted_by=req.submitted_by)
        for name in stores
    }


def fan_out(
    *, session: Session, settings: Settings, request_id: str, job_id: str, kind: str
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Create one sub-job of ``kind`` (``privacy.erase_store``, ``privacy.export_store``,
    ``privacy.rectify_store``) per store; the caller publishes them after the commit.
    The request keeps their ids (``result.sub_jobs``) while it is in progress; a second
    delivery finds them there and creates none."""
    req = get_request(session=session, request_id=request_id)
    if req.status != "in_progress":
        return req.result or {"status": req.status}, []
    existing = (req.result or {}).get("sub_jobs")
    if existing:  # a second delivery: the sub-jobs exist (the reaper re-publishes lost ones)
        return {"sub_jobs": existing}, []
    if kind == ERASE_STORE_KIND and settings.privacy_signing_key is None:
        raise ConfigurationError("secret privacy_signing_key is not set")
    children = _sub_jobs(req, kind, _store_names(settings, req, kind))
    session.add_all(children.values())
    session.flush()
    sub_jobs = {name: child.id for name, child in children.items()}
    req.result = {"sub_jobs": sub_jobs}
    audit.record(session=session, ctx=_job_ctx(job_id), action="privacy.request.fanned_out",
                 target=f"privacy_request:{req.id}", details={"kind": kind, "sub_jobs": sub_jobs})
    return {"sub_jobs": sub_jobs}, [(child.id, kind) for child in children.values()]


def _lock(session: Session, request_id: str) -> PrivacyRequest:
    """The request under its row lock (SQLite: the write lock), read afresh."""
    return session.execute(
        select(PrivacyRequest).where(PrivacyRequest.id == request_id).with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def _siblings(session: Session, req: PrivacyRequest, job_id: str | None = None) -> list[Any]:
    sub_jobs: dict[str, str] = (req.result or {}).get("sub_jobs", {})
    return [row for row in session.execute(
        select(Job.id, Job.status, Job.result, Job.error, Job.params)
        .where(Job.id.in_(list(sub_jobs.values())))
    ) if row.id != job_id]


def _siblings_done(
    session: Session, request_id: str, job_id: str
) -> tuple[PrivacyRequest, dict[str, str], dict[str, dict[str, Any]]] | None:
    """Under the request's row lock: the request, its sub-jobs and the siblings' results,
    if every sibling succeeded and the request is still open."""
    req = _lock(session, request_id)
    if req.status != "in_progress" or job_id not in (req.result or {}).get("sub_jobs", {}).values():
        return None  # done, failed, or this sub-job was replaced by a retry
    siblings = _siblings(session, req, job_id)
    if any(row.status != JobStatus.succeeded.value for row in siblings):
        return None  # a sibling still runs (or failed): it is not this sub-job's turn
    return req, dict((req.result or {})["sub_jobs"]), {row.result["store"]: row.result for row in siblings}


# -- export ----------------------------------------------------------------------------------


def run_export_store(
    *, session: Session, settings: Settings, blobs: BlobStore, request_id: str, store_name: str,
    job_id: str,
) -> tuple[dict[str, Any], list[str]]:
    """Export one store into an encrypted part in the file store; the sub-job that finds
    all its siblings succeeded builds the bundle from every part (DLP-checked), stores it
    and completes the request. Returns the result and the parts to delete after the
    commit (all of them once the bundle is built; its own if the request has failed)."""
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
    try:
        req = _lock(session, request_id)
        if req.status != "in_progress" or job_id not in (req.result or {}).get("sub_jobs", {}).values():
            return {**mine, "request_status": req.status}, [sha]  # failed meanwhile: an orphan
        done = _siblings_done(session, request_id, job_id)
        if done is None:
            return mine, []
        req, sub_jobs, records = done
        parts = [({**records, store_name: mine})[name] for name in sub_jobs]
        _complete_export(session, settings, blobs, dm, req, subject, parts, sub_jobs, job_id)
    except BaseException:
        # this run fails (or retries): its part goes; a successful retry stores it again
        blobs.delete(sha)
        raise
    return mine, [p["part_sha256"] for p in parts]


def _complete_export(
    session: Session, settings: Settings, blobs: BlobStore, dm: DataMap, req: PrivacyRequest,
    subject: dict[str, str], parts: list[dict[str, Any]], sub_jobs: dict[str, str], job_id: str,
) -> None:
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


# -- erasure ---------------------------------------------------------------------------------


def _earlier_transactions(
    session: Session, settings: Settings, request_id: str, store_name: str
) -> list[tuple[PrivacyStoreErasure, dict[str, Any]]]:
    rows = session.scalars(select(PrivacyStoreErasure).where(
        PrivacyStoreErasure.request_id == request_id, PrivacyStoreErasure.store == store_name,
        PrivacyStoreErasure.state == "prepared").order_by(PrivacyStoreErasure.created_at))
    return [(row, _unseal_record(settings, request_id, row.sealed)) for row in rows]


def _unseal_record(settings: Settings, request_id: str, sealed: str) -> dict[str, Any]:
    holder = PrivacyRequest(id=request_id, sealed=sealed)
    return unseal(settings, holder)


def _actions(data: list[dict[str, Any]]) -> list[Action]:
    return [Action(a["store"], a["table"], a["strategy"], tuple(a["columns"]), a["rows"], a["legal_hold"])
            for a in data]


def run_erase_store(
    *, session: Session, settings: Settings, request_id: str, store_name: str, job_id: str,
    kv: redis.Redis | None = None,
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Erase and verify one store; the sub-job that finds all its siblings succeeded
    completes the request (under the request's row lock) with the signed receipt.

    Before this run erases, the records of earlier runs' transactions are checked
    against the store: a committed one counts, one that rolled back is voided. A store
    that failed in a way that may pass makes the sub-job retry; one that failed for good
    fails it. A re-run finds nothing left to erase."""
    req = get_request(session=session, request_id=request_id)
    if req.status != "in_progress" or req.sealed is None:
        return {"store": store_name, "request_status": req.status}, []
    subject = unseal(settings, req)["identities"]
    dm = datamap(settings)
    store = dm.stores.get(store_name)
    if store is None:
        raise InvalidInput(f"store {store_name!r} is no longer in the personal-data map")
    connector = shared_connector(settings)
    counted: list[list[Action]] = []
    for record, data in _earlier_transactions(session, settings, request_id, store_name):
        if transaction_committed(store, data["changed"], connector):
            counted.append(_actions(data["actions"]))
        else:
            record.state = "void"
    # Commit the voids, and end the platform transaction before the store is worked on:
    # none (on SQLite, no write lock) is held while a user's store is slow.
    session.commit()

    def write_ahead(actions: list[Action], changed: Changed) -> None:
        sealed = seal(settings, request_id, {"actions": [a.to_receipt() for a in actions],
                                             "changed": jsonable(changed)})
        session.add(PrivacyStoreErasure(request_id=request_id, store=store_name, job_id=job_id,
                                        state="prepared", sealed=sealed))
        session.commit()  # durable before the store commits

    started = utcnow()
    outcome = erase_one_store(store, subject, connector, key=hash_key(settings), before_commit=write_ahead)
    if outcome.status != "committed":
        if outcome.retryable:
            raise Unavailable(f"erasure rolled back in store {store_name}; retrying")
        raise InvalidInput(f"erasure rolled back in store {store_name}: {outcome.error}"[:MAX_REASON])
    outcome.actions = merge_actions(*counted, outcome.actions)
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


# -- rectification ---------------------------------------------------------------------------


def run_rectify_store(
    *, session: Session, settings: Settings, request_id: str, store_name: str, job_id: str
) -> dict[str, Any]:
    """Rectify the subject's rows in one store (one transaction); the sub-job that finds
    all its siblings succeeded completes the request with every store's changes and the
    recipients to notify (Art 19). A re-run writes the same values again."""
    req = get_request(session=session, request_id=request_id)
    if req.status != "in_progress" or req.sealed is None:
        return {"store": store_name, "request_status": req.status}
    sealed = unseal(settings, req)
    session.rollback()  # no platform database transaction while the store is written
    dm = datamap(settings)
    store = dm.stores.get(store_name)
    if store is None:
        raise InvalidInput(f"store {store_name!r} is no longer in the personal-data map")
    changes = rectify_store(dm, store, sealed["identities"], sealed["rectification"],
                            shared_connector(settings))
    mine = {"store": store_name, "changes": [c.to_dict() for c in changes]}
    done = _siblings_done(session, request_id, job_id)
    if done is not None:
        req, sub_jobs, records = done
        _complete_rectification(session, settings, req, sealed["rectification"],
                                {**records, store_name: mine}, sub_jobs, job_id)
    return mine


def _complete_rectification(
    session: Session, settings: Settings, req: PrivacyRequest, updates: dict[str, Any],
    records: dict[str, dict[str, Any]], sub_jobs: dict[str, str], job_id: str,
) -> None:
    dm = datamap(settings)
    fields = [dm.stores[s].tables[t].fields[c] for s, t, c in parse_updates(dm, updates)]
    changes = [c for name in sub_jobs for c in records[name]["changes"]]
    result = {"changes": changes, "recipients_to_notify": recipients(dm, fields), "sub_jobs": sub_jobs}
    _finish(session, req, "completed", job_id, result)


# -- failures, the sweep, retries --------------------------------------------------------------


def _reason(job: Any) -> str:
    return (job.error or f"the job was {job.status}")[:MAX_REASON]


def _fail(
    session: Session, req: PrivacyRequest, store: str | None, job_id: str, reason: str,
    kv: redis.Redis | None,
) -> tuple[list[tuple[str, str]], list[str]]:
    """Fail a locked, in-progress request; returns deliveries and export parts to delete."""
    parts = [row.result["part_sha256"] for row in _siblings(session, req)
             if row.status == JobStatus.succeeded.value and row.result and row.result.get("part_sha256")]
    failure = {"store": store, "job_id": job_id, "reason": reason}
    req.result = {**(req.result or {}), "failure": failure}
    _transition(session, req, "failed", _job_ctx(job_id), f"{store or 'request'}: {reason}",
                store=store, reason=reason)
    event = monitor.log_security_event(
        FAILED, {"request_id": req.id, "type": req.type, "store": store, "reason": reason}, "high",
        session=session, kv=kv)
    return event.deliveries, parts


def job_failed(
    *, session: Session, job_id: str, kv: redis.Redis | None = None
) -> tuple[list[tuple[str, str]], list[str]]:
    """A privacy job gave up (final failure after its retries, or poison): fail its request
    unless it was done or failed already. Returns deliveries to publish and export parts
    to delete after the commit."""
    job = session.get(Job, job_id)
    if job is None or job.status != JobStatus.failed.value or "request_id" not in (job.params or {}):
        return [], []
    req = _lock(session, job.params["request_id"])
    if req.status != "in_progress":
        return [], []
    owned = job.id == req.job_id or job.id in (req.result or {}).get("sub_jobs", {}).values()
    if not owned:  # a sub-job a retry replaced
        return [], []
    return _fail(session, req, job.params.get("store"), job.id, _reason(job), kv)


def reconcile(
    *, session: Session, settings: Settings, blobs: BlobStore, kv: redis.Redis | None = None
) -> tuple[list[tuple[str, str]], list[str]]:
    """Requests in progress whose jobs are all final: failed when one failed or was
    cancelled, completed when all succeeded (the last sub-job's completion was lost).
    Returns deliveries to publish and blobs (export parts) to delete after the commit."""
    deliveries: list[tuple[str, str]] = []
    drop: list[str] = []
    ids = session.scalars(select(PrivacyRequest.id).where(
        PrivacyRequest.status == "in_progress", PrivacyRequest.job_id.is_not(None))).all()
    for rid in ids:
        req = _lock(session, rid)
        if req.status != "in_progress" or req.job_id is None:
            continue
        parent = session.get(Job, req.job_id)
        sub_jobs = (req.result or {}).get("sub_jobs")
        if not sub_jobs:
            if parent is not None and parent.status in (JobStatus.failed.value, JobStatus.cancelled.value):
                more, parts = _fail(session, req, None, parent.id, _reason(parent), kv)
                deliveries += more
                drop += parts
            continue
        rows = _siblings(session, req)
        if len(rows) != len(sub_jobs) or any(row.status not in FINAL for row in rows):
            continue
        bad = next((row for row in rows if row.status != JobStatus.succeeded.value), None)
        if bad is not None:
            more, parts = _fail(session, req, bad.params.get("store"), bad.id, _reason(bad), kv)
            deliveries += more
            drop += parts
            continue
        records = {row.result["store"]: row.result for row in rows}
        more, parts = _complete_late(session, settings, blobs, req, records)
        deliveries += more
        drop += parts
    return deliveries, drop


def _complete_late(
    session: Session, settings: Settings, blobs: BlobStore, req: PrivacyRequest,
    records: dict[str, dict[str, Any]],
) -> tuple[list[tuple[str, str]], list[str]]:
    sub_jobs: dict[str, str] = dict(req.result["sub_jobs"])  # type: ignore[index]
    sealed = unseal(settings, req)
    dm = datamap(settings)
    actor = list(sub_jobs.values())[-1]  # recorded as the job that completed the request
    if req.type == "erasure":
        return _complete_erasure(session, settings, req, dm, sealed["identities"], records, sub_jobs, actor,
                                 kv=None), []
    if req.type == "rectification":
        _complete_rectification(session, settings, req, sealed["rectification"], records, sub_jobs, actor)
        return [], []
    parts = [records[name] for name in sub_jobs]
    _complete_export(session, settings, blobs, dm, req, sealed["identities"], parts, sub_jobs, actor)
    return [], [p["part_sha256"] for p in parts]


def retry(
    *, session: Session, settings: Settings, req: PrivacyRequest, ctx: AuditContext
) -> list[tuple[str, str]]:
    """Run a failed request again: new sub-jobs for the stores that failed (an export's
    every store: its parts were deleted), or a new job if the fan-out itself failed.
    Returns the jobs to publish after the commit."""
    if req.status != "failed":
        raise Conflict("only a failed request is retried")
    if req.sealed is None:
        raise Conflict("the request's identities were already dropped")
    parent = session.get(Job, req.job_id) if req.job_id else None
    if parent is None:
        raise Conflict("the request has no job to retry")
    sub_jobs: dict[str, str] = dict((req.result or {}).get("sub_jobs") or {})
    kind = SUB_KINDS[parent.kind]
    if not sub_jobs:
        job = Job(kind=parent.kind, params=KINDS[parent.kind].validate({"request_id": req.id}),
                  status=JobStatus.queued.value, attempts=0, submitted_by=req.submitted_by)
        session.add(job)
        session.flush()
        req.job_id, req.result = job.id, None
        created = [(job.id, job.kind)]
    else:
        status = {row.id: row.status for row in _siblings(session, req)}
        if any(value not in FINAL for value in status.values()):
            raise Conflict("a sub-job of the request is still queued or running; retry once it ends")
        again = [name for name, jid in sub_jobs.items()
                 if kind == EXPORT_STORE_KIND or status.get(jid) != JobStatus.succeeded.value]
        children = _sub_jobs(req, kind, again)
        session.add_all(children.values())
        session.flush()
        sub_jobs.update({name: child.id for name, child in children.items()})
        req.result = {"sub_jobs": sub_jobs}
        created = [(child.id, kind) for child in children.values()]
    _transition(session, req, "in_progress", ctx, "retried", jobs=[jid for jid, _ in created])
    return created


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
