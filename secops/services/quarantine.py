"""Quarantine of stored files: a malicious file goes in, an administrator lets it out
or destroys it.

A file is quarantined when its scan (or a cached verdict) is malicious, unless an
administrator has already decided about that content. :func:`release` and
:func:`delete` change the record and are audited; the caller commits, then carries the
decision out on the stored file with :func:`apply_decision`.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from secops.db.base import utcnow
from secops.db.models import StoredFile
from secops.errors import Conflict, NotFound
from secops.services import audit, content
from secops.services.audit import AuditContext
from secops.services.storage import BlobStore, valid_sha256


def quarantine_file(*, session: Session, store: BlobStore, sha256: str) -> bool:
    row = session.get(StoredFile, sha256)
    if row is None or row.state in ("released", "deleted"):
        return False  # an admin has decided about this content already
    if row.state != "quarantined":
        row.state, row.quarantined_at, row.updated_at = "quarantined", utcnow(), utcnow()
    store.move(sha256, to_quarantine=True)
    return True


def _quarantined(session: Session, sha256: str) -> StoredFile:
    row = session.get(StoredFile, valid_sha256(sha256))
    if row is None:
        raise NotFound("no such stored file")
    if row.state != "quarantined":
        raise Conflict(f"file is not quarantined (it is {row.state})")
    return row


def list_quarantine(*, session: Session, limit: int = 100) -> list[StoredFile]:
    return list(session.scalars(select(StoredFile).where(StoredFile.state == "quarantined")
                                .order_by(StoredFile.quarantined_at.desc()).limit(limit)).all())


def release(*, session: Session, sha256: str, ctx: AuditContext) -> StoredFile:
    """Let a quarantined file out (it stays encrypted in storage); audited. The caller
    commits, then moves the file with :func:`apply_decision`: a failed commit leaves the
    file where it was, never out of quarantine while the record says otherwise."""
    row = _quarantined(session, sha256)
    row.state, row.updated_at = "released", utcnow()
    audit.record(session=session, ctx=ctx, action="quarantine.release", target=f"file:{sha256}",
                 details={"size": row.size, "quarantined_at": row.quarantined_at})
    return row


def delete(*, session: Session, sha256: str, ctx: AuditContext) -> StoredFile:
    """Destroy a quarantined file's content; the row stays as the record. Audited. The
    caller commits, then removes the content with :func:`apply_decision`."""
    row = _quarantined(session, sha256)
    row.state, row.updated_at = "deleted", utcnow()
    audit.record(session=session, ctx=ctx, action="quarantine.delete", target=f"file:{sha256}",
                 details={"size": row.size, "quarantined_at": row.quarantined_at})
    return row


def apply_decision(*, session: Session, store: BlobStore, row: StoredFile) -> None:
    """Carry out a committed release or delete on the stored file (both idempotent). A
    delete removes the content under the exclusive content lock, in ``session``'s next
    transaction (the caller commits it), and only if the row still says ``deleted``: an
    upload of the same content since stored it again (:mod:`secops.services.content`)."""
    if row.state == "released":
        store.move(row.sha256, to_quarantine=False)
    elif row.state == "deleted":
        content.remove(session, store, [row.sha256], _not_deleted)


def _not_deleted(session: Session, sha256s: list[str]) -> set[str]:
    return set(session.scalars(select(StoredFile.sha256).where(
        StoredFile.sha256.in_(sha256s), StoredFile.state != "deleted")))
