"""The consent ledger: who gave or withdrew consent for which purpose, when, and from where.

Append-only and hash-chained like the audit log: each entry's ``hash`` is HMAC-SHA256
(key derived from ``privacy_hmac``) over its fields and the previous entry's hash, and a
single head row, locked by every append, names the tail. Changing, removing, inserting
or reordering an entry breaks the chain at that entry; :func:`verify` (``secops privacy
consents verify``) finds the first broken link. Subjects are kept only as the keyed
subject hash of their identities (the privacy engine's), never as values.

The current state of a subject's consent for a purpose is the action of the latest
entry for that pair.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from secops.config import Settings
from secops.db.base import utcnow
from secops.db.models import ConsentChainHead, ConsentRecord
from secops.errors import InvalidInput
from secops.privacy import subject_hash
from secops.services import audit
from secops.services.audit import AuditContext
from secops.services.privacy import datamap, hash_key
from secops.services.storage import derive_key

GENESIS = "0" * 64
HEAD_ID = 1
ACTIONS = ("given", "withdrawn")
BATCH = 1000


def _chain_key(settings: Settings) -> bytes:
    return derive_key(hash_key(settings).decode(), b"privacy consent chain v1")


def entry_hash(key: bytes, e: ConsentRecord) -> str:
    fields = [
        e.seq,
        e.subject_hash,
        e.purpose,
        e.lawful_basis,
        e.action,
        e.source,
        e.recorded_at.isoformat(),
        e.actor,
        e.prev_hash,
    ]
    return hmac.new(key, json.dumps(fields, separators=(",", ":")).encode(), hashlib.sha256).hexdigest()


def _subject(settings: Settings, identities: dict[str, str]) -> str:
    if not identities:
        raise InvalidInput("give at least one identity")
    return subject_hash(hash_key(settings), identities)


def _lock_head(session: Session) -> ConsentChainHead:
    query = select(ConsentChainHead).where(ConsentChainHead.id == HEAD_ID).with_for_update()
    head = session.scalar(query)
    if head is not None:
        return head
    try:
        with session.begin_nested():
            session.add(ConsentChainHead(id=HEAD_ID, last_seq=0, last_hash=GENESIS))
    except IntegrityError:
        pass  # created concurrently: lock theirs
    head = session.scalar(query)
    assert head is not None
    return head


def record(
    *,
    session: Session,
    settings: Settings,
    ctx: AuditContext,
    identities: dict[str, str],
    purpose: str,
    action: str,
    source: str,
    lawful_basis: str = "consent",
) -> ConsentRecord:
    """Append one entry; the purpose must be one of the map's processing purposes."""
    if action not in ACTIONS:
        raise InvalidInput("action must be given or withdrawn")
    purposes = [p.purpose for p in datamap(settings).processing]
    if purpose not in purposes:
        raise InvalidInput(f"unknown purpose {purpose!r} (the map's purposes: {', '.join(purposes)})")
    head = _lock_head(session)
    entry = ConsentRecord(
        seq=head.last_seq + 1,
        subject_hash=_subject(settings, identities),
        purpose=purpose,
        lawful_basis=lawful_basis,
        action=action,
        source=source[:200],
        recorded_at=utcnow(),
        actor=ctx.actor[:120],
        prev_hash=head.last_hash,
    )
    entry.hash = entry_hash(_chain_key(settings), entry)
    session.add(entry)
    head.last_seq, head.last_hash = entry.seq, entry.hash
    session.flush()
    audit.record(
        session=session,
        ctx=ctx,
        action=f"privacy.consent.{action}",
        target=f"consent:{entry.seq}",
        details={"purpose": purpose, "source": entry.source},
    )
    return entry


def entry_dict(e: ConsentRecord) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "purpose": e.purpose,
        "lawful_basis": e.lawful_basis,
        "action": e.action,
        "source": e.source,
        "recorded_at": e.recorded_at.isoformat(),
        "actor": e.actor,
    }


def state(*, session: Session, settings: Settings, identities: dict[str, str]) -> dict[str, Any]:
    """The subject's current consent per purpose, derived from the ledger, and the history."""
    digest = _subject(settings, identities)
    history = list(
        session.scalars(
            select(ConsentRecord).where(ConsentRecord.subject_hash == digest).order_by(ConsentRecord.seq)
        )
    )
    current: dict[str, dict[str, Any]] = {}
    for e in history:
        current[e.purpose] = {"state": e.action, "since": e.recorded_at.isoformat(), "source": e.source}
    return {"purposes": current, "history": [entry_dict(e) for e in history]}


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    broken_seq: int | None = None
    reason: str | None = None


def verify(*, session: Session, settings: Settings) -> VerifyResult:
    """Walk the chain and report the first broken link."""
    key = _chain_key(settings)
    head = session.get(ConsentChainHead, HEAD_ID)
    expected_seq, expected_prev, checked, after = 1, GENESIS, 0, 0
    while True:
        rows = session.scalars(
            select(ConsentRecord).where(ConsentRecord.seq > after).order_by(ConsentRecord.seq).limit(BATCH)
        ).all()
        for e in rows:
            if e.seq != expected_seq:
                return VerifyResult(
                    False, checked, expected_seq, f"entries {expected_seq}..{e.seq - 1} are missing"
                )
            if not hmac.compare_digest(e.prev_hash, expected_prev):
                return VerifyResult(False, checked, e.seq, "does not link to the previous entry")
            if not hmac.compare_digest(e.hash, entry_hash(key, e)):
                return VerifyResult(False, checked, e.seq, "was altered")
            checked += 1
            expected_seq, expected_prev = e.seq + 1, e.hash
        if len(rows) < BATCH:
            break
        after = rows[-1].seq
    last_seq, last_hash = (head.last_seq, head.last_hash) if head else (0, GENESIS)
    if last_seq != expected_seq - 1 or last_hash != expected_prev:
        return VerifyResult(
            False, checked, expected_seq, f"entries at the end are missing (the head names entry {last_seq})"
        )
    return VerifyResult(True, checked)
