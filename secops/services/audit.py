"""The tamper-evident audit log: an HMAC-SHA256 hash chain in one append-only table.

Every entry stores its position ``seq``, the previous entry's hash and its own hash,
HMAC-SHA256(``audit_hmac`` secret, canonical JSON of every field including the previous
hash). Whoever can write to the database but does not hold the key cannot edit an entry
(its hash no longer matches), delete one (a gap in ``seq`` and a broken link), insert one
(no valid hash) or reorder entries (links break) without :func:`verify` naming the first
broken link. The chain head row (id 1) holds the tail's ``seq`` and hash; every append
locks it (``SELECT ... FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so
concurrent writers can never fork the chain, and verification notices entries cut off
the end while the head still names them.

Retention archives the oldest entries to a JSON-lines file and prunes them, leaving a
checkpoint row (MAC'd with the same key) that holds the hash of the last pruned entry:
verification then starts from the checkpoint. Limit: an attacker who also rewinds the
head row to an earlier, genuine state can hide truncation of the newest entries; an
exported copy or the head hash logged by each verification run is the outside anchor.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from secops.config import get_settings
from secops.db.base import utcnow
from secops.db.models import AuditChainHead, AuditCheckpoint, AuditEntry
from secops.errors import Conflict, InvalidInput

GENESIS = "0" * 64
HEAD_ID = 1
BATCH = 1000
EXPORT_FIELDS = ("seq", "time", "actor", "action", "target", "request_id", "client_ip",
                 "details", "prev_hash", "hash")


@dataclass(frozen=True)
class AuditContext:
    """Who did it and from where: the request's principal, request id and client IP."""

    actor: str
    request_id: str | None = None
    client_ip: str | None = None


@dataclass(frozen=True)
class BrokenLink:
    seq: int
    reason: str


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    head_seq: int
    head_hash: str
    first_broken: BrokenLink | None = None

    def as_dict(self) -> dict[str, Any]:
        broken = self.first_broken
        return {"ok": self.ok, "checked": self.checked, "head_seq": self.head_seq,
                "head_hash": self.head_hash,
                "first_broken": None if broken is None else {"seq": broken.seq,
                                                             "reason": broken.reason}}


def _key() -> bytes:
    return get_settings().secret("audit_hmac").get_secret_value().encode()


def _time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _mac(key: bytes, fields: list[Any]) -> str:
    data = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, data.encode(), hashlib.sha256).hexdigest()


def entry_hash(key: bytes, entry: AuditEntry) -> str:
    return _mac(key, [entry.seq, _time(entry.created_at), entry.actor, entry.action,
                      entry.target, entry.request_id, entry.client_ip, entry.details,
                      entry.prev_hash])


def checkpoint_mac(key: bytes, cp: AuditCheckpoint) -> str:
    return _mac(key, ["checkpoint", cp.through_seq, cp.last_hash, cp.archived_count, cp.archive])


def _lock_head(session: Session) -> AuditChainHead:
    """The chain head, locked for this transaction; recreated from the tail if missing."""
    head = session.scalar(
        select(AuditChainHead).where(AuditChainHead.id == HEAD_ID).with_for_update()
    )
    if head is not None:
        return head
    last = session.scalar(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1))
    cp = _latest_checkpoint(session)
    if last is not None:
        seq, tail = last.seq, last.hash
    elif cp is not None:
        seq, tail = cp.through_seq, cp.last_hash
    else:
        seq, tail = 0, GENESIS
    try:
        with session.begin_nested():
            session.add(AuditChainHead(id=HEAD_ID, last_seq=seq, last_hash=tail))
    except IntegrityError:
        pass  # created concurrently: lock theirs
    head = session.scalar(
        select(AuditChainHead).where(AuditChainHead.id == HEAD_ID).with_for_update()
    )
    assert head is not None
    return head


def record(
    *, session: Session, ctx: AuditContext, action: str, target: str,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry in the caller's transaction (it commits with the change it records)."""
    key = _key()
    head = _lock_head(session)
    clean = json.loads(json.dumps(details or {}, default=str, sort_keys=True))
    entry = AuditEntry(
        seq=head.last_seq + 1, created_at=utcnow(), actor=ctx.actor[:120], action=action[:64],
        target=target[:200], request_id=ctx.request_id, client_ip=ctx.client_ip,
        details=clean, prev_hash=head.last_hash,
    )
    entry.hash = entry_hash(key, entry)
    session.add(entry)
    head.last_seq, head.last_hash = entry.seq, entry.hash
    session.flush()
    return entry


def _latest_checkpoint(session: Session) -> AuditCheckpoint | None:
    return session.scalar(
        select(AuditCheckpoint).order_by(AuditCheckpoint.through_seq.desc()).limit(1)
    )


def verify(*, session: Session) -> VerifyResult:
    """Walk the chain from the last checkpoint (or the start) and report the first broken link."""
    key = _key()
    head = session.get(AuditChainHead, HEAD_ID)
    head_seq, head_hash = (head.last_seq, head.last_hash) if head else (0, GENESIS)
    cp = _latest_checkpoint(session)
    expected_seq, expected_prev = 1, GENESIS
    if cp is not None:
        if not hmac.compare_digest(cp.mac, checkpoint_mac(key, cp)):
            return VerifyResult(False, 0, head_seq, head_hash,
                                BrokenLink(cp.through_seq, "archive checkpoint was altered"))
        expected_seq, expected_prev = cp.through_seq + 1, cp.last_hash
    checked = 0
    after = expected_seq - 1
    while True:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.seq > after).order_by(AuditEntry.seq).limit(BATCH)
        ).all()
        for entry in rows:
            broken = _check(key, entry, expected_seq, expected_prev)
            if broken is not None:
                return VerifyResult(False, checked, head_seq, head_hash, broken)
            checked += 1
            expected_seq, expected_prev = entry.seq + 1, entry.hash
        if len(rows) < BATCH:
            break
        after = rows[-1].seq
    if head is None and expected_seq > 1:
        return VerifyResult(False, checked, head_seq, head_hash,
                            BrokenLink(expected_seq - 1, "chain head row is missing"))
    if head is not None and (head.last_seq != expected_seq - 1 or head.last_hash != expected_prev):
        return VerifyResult(False, checked, head_seq, head_hash,
                            BrokenLink(expected_seq, "entries at the end of the chain are "
                                       f"missing (the head names entry {head.last_seq})"))
    return VerifyResult(True, checked, head_seq, head_hash)


def _check(key: bytes, entry: AuditEntry, expected_seq: int,
           expected_prev: str) -> BrokenLink | None:
    if entry.seq != expected_seq:
        return BrokenLink(expected_seq, f"entries {expected_seq}..{entry.seq - 1} are missing")
    if not hmac.compare_digest(entry.prev_hash, expected_prev):
        return BrokenLink(entry.seq, "does not link to the previous entry "
                                     "(an entry was removed, inserted or moved)")
    if not hmac.compare_digest(entry.hash, entry_hash(key, entry)):
        return BrokenLink(entry.seq, "hash does not match the entry (altered or forged)")
    return None


def list_entries(
    *, session: Session, since: datetime | None = None, until: datetime | None = None,
    actor: str | None = None, action: str | None = None, limit: int = 100, offset: int = 0,
) -> tuple[list[AuditEntry], int]:
    query = select(AuditEntry)
    if since is not None:
        query = query.where(AuditEntry.created_at >= since)
    if until is not None:
        query = query.where(AuditEntry.created_at < until)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if action:
        query = query.where(AuditEntry.action == action)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(AuditEntry.seq.desc()).limit(limit).offset(offset)).all()
    return list(rows), total


def entry_dict(entry: AuditEntry) -> dict[str, Any]:
    return {"seq": entry.seq, "time": _time(entry.created_at), "actor": entry.actor,
            "action": entry.action, "target": entry.target, "request_id": entry.request_id,
            "client_ip": entry.client_ip, "details": entry.details,
            "prev_hash": entry.prev_hash, "hash": entry.hash}


def _page(session: Session, after: int, since: datetime | None,
          until: datetime | None) -> list[AuditEntry]:
    query = select(AuditEntry).where(AuditEntry.seq > after)
    if since is not None:
        query = query.where(AuditEntry.created_at >= since)
    if until is not None:
        query = query.where(AuditEntry.created_at < until)
    return list(session.scalars(query.order_by(AuditEntry.seq).limit(BATCH)).all())


def _csv_cell(value: Any) -> str:
    """A CSV cell a spreadsheet will not run as a formula (CWE-1236)."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True) \
        if isinstance(value, dict | list) else "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def export_page(
    *, session: Session, fmt: str, after: int = 0, since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[str, int | None]:
    """One batch of entries after ``after``, oldest first, as JSON lines or CSV rows (the
    CSV header comes with the first page), and the seq to continue from (None: done).

    Paged so a caller can use one short transaction per page: a long export must not
    hold SQLite's write lock.
    """
    if fmt not in ("jsonl", "csv"):
        raise InvalidInput("format must be jsonl or csv")
    rows = _page(session, after, since, until)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if fmt == "csv" and after == 0:
        writer.writerow(EXPORT_FIELDS)
    for entry in rows:
        data = entry_dict(entry)
        if fmt == "jsonl":
            buffer.write(json.dumps(data, sort_keys=True) + "\n")
        else:
            writer.writerow([_csv_cell(data[f]) for f in EXPORT_FIELDS])
    more = rows[-1].seq if len(rows) == BATCH else None
    return buffer.getvalue(), more


def export(*, session: Session, fmt: str, since: datetime | None = None,
           until: datetime | None = None) -> Iterator[str]:
    """Every entry, page by page, in one session (the CLI's export)."""
    after: int | None = 0
    while after is not None:
        chunk, after = export_page(session=session, fmt=fmt, after=after, since=since,
                                   until=until)
        yield chunk


@dataclass(frozen=True)
class ArchiveResult:
    through_seq: int
    archived: int
    archive: str


def archive_and_prune(
    *, session: Session, before: datetime, archive_dir: Path
) -> ArchiveResult | None:
    """Move entries older than ``before`` to a JSON-lines file and leave a checkpoint.

    Refuses (Conflict) when the chain does not verify: pruning would destroy the
    evidence. None when nothing is old enough.
    """
    head = _lock_head(session)
    result = verify(session=session)
    if not result.ok:
        raise Conflict("the audit chain does not verify; nothing was archived")
    through = session.scalar(select(func.max(AuditEntry.seq)).where(AuditEntry.created_at < before))
    if through is None:
        return None
    rows = session.scalars(
        select(AuditEntry).where(AuditEntry.seq <= through).order_by(AuditEntry.seq)
    ).all()
    if not rows:
        return None
    archive_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = archive_dir / f"audit-{rows[0].seq:012d}-{through:012d}.jsonl"
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for entry in rows:
            fh.write(json.dumps(entry_dict(entry), sort_keys=True) + "\n")
        fh.flush()
    tmp.chmod(0o600)
    tmp.replace(path)
    cp = AuditCheckpoint(through_seq=through, last_hash=rows[-1].hash, archived_count=len(rows),
                         archive=str(path), created_at=utcnow())
    cp.mac = checkpoint_mac(_key(), cp)
    session.add(cp)
    session.execute(delete(AuditEntry).where(AuditEntry.seq <= through))
    session.flush()
    assert head.last_seq >= through
    return ArchiveResult(through, len(rows), str(path))
