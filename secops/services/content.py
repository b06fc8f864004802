"""Stored content and the rows naming it: a committed row never names content that is gone.

The store keeps one file per content (``services.storage``), shared by every row naming
it: an upload of content already stored reuses its file. Two kinds of transaction meet
on one content, and the content lock keeps them apart:

* those that commit rows naming content (uploads, a DLP scan or a scan job of a stored
  file) take it **shared** (:func:`lock`) before they look whether the content exists
  (its ``stored_files`` row or its file), and hold it until they commit or roll back. An
  upload's files are placed before (:meth:`BlobStore.commit_all`, with a staged copy
  kept of content already stored); under the lock, :func:`hold` checks that each is
  still in place and puts back any that was removed meanwhile from that copy, before the
  rows commit; the copies go once the transaction ends.
* those that remove content (retention, an administrator's delete of a quarantined file)
  commit the change to the rows first, then in a later transaction take the lock
  **exclusively** (:func:`remove`), look again at the rows naming the content, and remove
  only the files no row needs, before that transaction ends.

Either the remover comes first, and the upload finds the file gone and puts it back, or
the upload commits first, and the remover sees its rows and keeps the file.

On PostgreSQL the lock is a transaction-level advisory lock per content (its key: the
SHA-256's first 64 bits), shared or exclusive. On SQLite every writing transaction
begins with ``BEGIN IMMEDIATE`` (``secops.db.session``) and holds the database's write
lock from its first statement to its end, which excludes every other writer: taking the
lock is beginning the transaction, and costs no statement.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy import event, text
from sqlalchemy.orm import Session, SessionTransaction

from secops.services.storage import BlobStore, StagedBlob

_KEPT = "secops.kept_copies"
_SHARED = text("SELECT count(pg_advisory_xact_lock_shared(k)) "
               "FROM unnest(CAST(:keys AS bigint[])) AS k")
_EXCLUSIVE = text("SELECT count(pg_advisory_xact_lock(k)) FROM unnest(CAST(:keys AS bigint[])) AS k")


def _keys(sha256s: Iterable[str]) -> list[int]:
    """Advisory lock keys, sorted (every transaction takes them in the same order)."""
    return sorted({int.from_bytes(bytes.fromhex(s[:16]), "big", signed=True) for s in sha256s})


def lock(session: Session, sha256s: Iterable[str], *, exclusive: bool = False) -> None:
    """Take the content lock on these contents until the transaction ends: shared to
    commit rows naming them, ``exclusive`` to remove them. One statement on
    PostgreSQL; on SQLite the transaction begins (the write lock) if it has not yet."""
    keys = _keys(sha256s)
    if session.get_bind().dialect.name != "postgresql":
        session.connection()  # BEGIN IMMEDIATE: the write lock, held to the end
        return
    if not keys:
        return
    # The keys in the array's order (sorted): two removers never wait for each other
    # in a cycle.
    session.execute(_EXCLUSIVE if exclusive else _SHARED, {"keys": keys})


def hold(session: Session, store: BlobStore, staged: list[StagedBlob]) -> list[str]:
    """For an upload whose files :meth:`BlobStore.commit_all` placed with ``keep``: take
    the lock on their contents and put back from the kept copies any that was removed
    meanwhile (durably, before the rows commit); the copies are released when the
    transaction ends. Call it before reading the contents' rows. Returns the SHA-256s
    put back."""
    lock(session, (blob.sha256 for blob in staged))
    kept = [blob for blob in staged if blob.kept]
    if not kept:
        return []
    session.info.setdefault(_KEPT, []).append((store, kept))
    return store.restore(kept)


@event.listens_for(Session, "after_transaction_end")
def _release_kept(session: Session, transaction: SessionTransaction) -> None:
    """The kept copies go when the transaction ends (commit, rollback or close)."""
    if transaction.parent is None:
        for store, kept in session.info.pop(_KEPT, ()):
            store.release(kept)


def remove(session: Session, store: BlobStore, sha256s: list[str],
           needed: Callable[[Session, list[str]], set[str]]) -> list[str]:
    """Remove the files of these contents that no row needs, under the exclusive lock:
    ``needed`` (run after the lock is taken) names those to keep. The caller commits
    (the lock ends with the transaction); returns the contents removed."""
    if not sha256s:
        return []
    lock(session, sha256s, exclusive=True)
    keep = needed(session, sha256s)
    return store.delete_many([s for s in sha256s if s not in keep])
