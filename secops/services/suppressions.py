"""Feedback on findings: suppressions of DLP findings and scan findings, and baselines.

An analyst suppresses a DLP finding by its id: the server copies the finding's type and
the keyed digest of its value into the suppression, so no digest is ever handed out
or taken in through the API (a caller who could compare digests could test guessed
values, see docs/security.md). A detector may also be suppressed on files whose name
matches a pattern, and a scan finding by the content's SHA-256 and its rule. Every
suppression has a reason and may expire; revoking one keeps the row. Each change is
audited and raises a security event; more than 20 suppressions by one actor within an
hour raise an alert (each value suppression can answer one guess about a value, so a
run of them is worth a look).

Suppressions apply to scans that finish after they are made: the DLP job drops the
suppressed findings before storing them; the scanning job drops suppressed findings
and works out the verdict from those left, and content with any scan suppression
(active or not) is always scanned again rather than answered from the verdict cache.

Baselines: :func:`export_baseline` (admin) writes every active suppression into a
baseline file; a value digest goes out *sealed* (AES-GCM under a key derived from the
DLP key, random nonce), so equal values give unequal entries and the file cannot be
compared with anything; :func:`import_baseline` (admin) opens sealed entries with the
same key and adds the entries as suppressions.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import redis
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from secops.config import Settings
from secops.db.base import utcnow
from secops.db.feedback_models import Suppression
from secops.db.models import DlpFinding, ScanFinding, ScanResult
from secops.dlp import baseline as baseline_format
from secops.dlp.baseline import Baseline, BaselineError
from secops.errors import Conflict, InvalidInput, NotFound
from secops.services import audit, monitor
from secops.services.audit import AuditContext
from secops.services.storage import derive_key

CREATED, REVOKED, IMPORTED = "suppression.created", "suppression.revoked", "suppression.imported"
monitor.register_rule(monitor.AlertRule(
    "suppressions.actor", frozenset({CREATED}), "created_by", 20, 3600, "high",
    "many findings suppressed by one actor"))
Deliveries = list[tuple[str, str]]


def _seal_key(settings: Settings) -> bytes:
    if settings.dlp_hmac is not None:
        return derive_key(settings.dlp_hmac.get_secret_value(), b"dlp baseline seal v1")
    return derive_key(settings.secret("storage_key").get_secret_value(), b"dlp baseline seal v1")


def seal(settings: Settings, detector: str, digest: str) -> str:
    nonce = os.urandom(12)
    box = AESGCM(_seal_key(settings)).encrypt(nonce, bytes.fromhex(digest), detector.encode())
    return base64.urlsafe_b64encode(nonce + box).decode()


def unseal(settings: Settings, detector: str, sealed: str) -> str | None:
    """The digest in a sealed entry, or None if this platform did not seal it."""
    try:
        raw = base64.urlsafe_b64decode(sealed.encode())
        return AESGCM(_seal_key(settings)).decrypt(raw[:12], raw[12:], detector.encode()).hex()
    except (ValueError, InvalidTag):
        return None


# -- what applies -------------------------------------------------------------------------------


def _as_rule(row: Suppression) -> baseline_format.Suppression:
    return baseline_format.Suppression(row.family, row.detector, row.digest, row.sha256,
                                       row.path_pattern, row.expires_at)


def active_rules(*, session: Session, family: str, sha256s: Iterable[str] | None = None,
                 now: datetime | None = None) -> list[baseline_format.Suppression]:
    """The suppressions of ``family`` in force now (for scans: of these contents)."""
    now = now or utcnow()
    query = select(Suppression).where(Suppression.family == family,
                                      Suppression.revoked_at.is_(None))
    if sha256s is not None:
        wanted = sorted(set(sha256s))
        if not wanted:
            return []
        query = query.where(Suppression.sha256.in_(wanted))
    return [rule for rule in map(_as_rule, session.scalars(query)) if rule.active(now)]


def with_scan_history(*, session: Session, sha256s: Iterable[str]) -> set[str]:
    """The contents that have (or had) a scan suppression: their verdicts are never
    answered from the cache, whose findings predate the suppression or its end."""
    wanted = sorted(set(sha256s))
    if not wanted:
        return set()
    return set(session.scalars(select(Suppression.sha256).where(
        Suppression.family == "scan", Suppression.sha256.in_(wanted))))


# -- making and ending them ---------------------------------------------------------------------


def _expiry(expires_at: datetime | None) -> datetime | None:
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        raise InvalidInput("expires_at needs a time zone")
    if expires_at <= utcnow():
        raise InvalidInput("expires_at is in the past")
    return expires_at


def _pattern(path_pattern: str | None) -> str | None:
    if path_pattern is None:
        return None
    if not path_pattern.strip() or len(path_pattern) > 500 or "\x00" in path_pattern:
        raise InvalidInput("path_pattern must be 1 to 500 characters")
    return path_pattern


def _record(session: Session, row: Suppression, ctx: AuditContext, action: str,
            kv: redis.Redis | None) -> Deliveries:
    details = {"suppression_id": row.id, "family": row.family, "detector": row.detector,
               "sha256": row.sha256, "path_pattern": row.path_pattern, "by_value": row.digest is not None,
               "origin": row.origin, "expires_at": row.expires_at, "reason": row.reason}
    audit.record(session=session, ctx=ctx, action=action, target=f"suppression:{row.id}",
                 details=details)
    outcome = monitor.log_security_event(
        action, {**details, "subject": row.id, "created_by": ctx.actor,
                 "expires_at": str(row.expires_at) if row.expires_at else None},
        "medium", session=session, kv=kv)
    return outcome.deliveries


def _add(session: Session, ctx: AuditContext, kv: redis.Redis | None,
         **values: Any) -> tuple[Suppression, Deliveries]:
    row = Suppression(created_by=ctx.actor[:120], created_at=utcnow(), **values)
    session.add(row)
    session.flush()
    return row, _record(session, row, ctx, CREATED, kv)


def suppress_dlp_finding(*, session: Session, finding_id: int, reason: str,
                         expires_at: datetime | None, path_pattern: str | None,
                         ctx: AuditContext, kv: redis.Redis | None) -> tuple[Suppression, Deliveries]:
    """Mark a stored DLP finding's value as not sensitive (for this detector)."""
    finding = session.get(DlpFinding, finding_id)
    if finding is None:
        raise NotFound("DLP finding not found")
    if finding.digest is None:
        raise Conflict("this finding has no value digest to suppress by")
    return _add(session, ctx, kv, family="dlp", detector=finding.type, digest=finding.digest,
                path_pattern=_pattern(path_pattern), reason=reason,
                expires_at=_expiry(expires_at), origin=f"dlp_finding:{finding.id}")


def suppress_dlp_detector(*, session: Session, detector: str, path_pattern: str | None,
                          reason: str, expires_at: datetime | None, ctx: AuditContext,
                          kv: redis.Redis | None) -> tuple[Suppression, Deliveries]:
    """Switch a detector off for files whose name matches ``path_pattern``."""
    if path_pattern is None:
        raise InvalidInput("a detector is suppressed for a path_pattern (to switch it off "
                           "everywhere, leave it out of the policy)")
    return _add(session, ctx, kv, family="dlp", detector=detector,
                path_pattern=_pattern(path_pattern), reason=reason,
                expires_at=_expiry(expires_at), origin="rule")


def suppress_scan_finding(*, session: Session, scan_id: str, rule_id: str | None,
                          path_pattern: str | None, reason: str, expires_at: datetime | None,
                          ctx: AuditContext, kv: redis.Redis | None) -> tuple[Suppression, Deliveries]:
    """Mark a scan's verdict (all its findings, or those of one rule) a false positive
    for this content."""
    scan = session.get(ScanResult, scan_id)
    if scan is None:
        raise NotFound("scan not found")
    if rule_id is not None:
        rules = set(session.scalars(select(ScanFinding.rule_id).where(ScanFinding.scan_id == scan.id)))
        if rule_id not in rules:
            raise InvalidInput("that scan has no finding of this rule")
    return _add(session, ctx, kv, family="scan", sha256=scan.sha256, detector=rule_id,
                path_pattern=_pattern(path_pattern), reason=reason,
                expires_at=_expiry(expires_at), origin=f"scan:{scan.id}")


def in_force(row: Suppression, now: datetime | None = None) -> bool:
    """Whether a suppression applies now: not revoked and not expired."""
    return row.revoked_at is None and (row.expires_at is None or row.expires_at > (now or utcnow()))


def list_suppressions(*, session: Session, active_only: bool, family: str | None = None,
                      limit: int = 500) -> list[Suppression]:
    """The newest ``limit`` suppressions (of ``family``; in force only, with
    ``active_only``), filtered and cut in the query."""
    query = select(Suppression)
    if family is not None:
        query = query.where(Suppression.family == family)
    if active_only:
        now = utcnow()
        query = query.where(Suppression.revoked_at.is_(None),
                            or_(Suppression.expires_at.is_(None), Suppression.expires_at > now))
    return list(session.scalars(query.order_by(Suppression.created_at.desc()).limit(limit)))


def revoke(*, session: Session, suppression_id: str, ctx: AuditContext,
           kv: redis.Redis | None) -> tuple[Suppression, Deliveries]:
    row = session.get(Suppression, suppression_id)
    if row is None:
        raise NotFound("suppression not found")
    if row.revoked_at is not None:
        raise Conflict("suppression is already revoked")
    row.revoked_at, row.revoked_by = utcnow(), ctx.actor[:120]
    return row, _record(session, row, ctx, REVOKED, kv)


# -- baselines ----------------------------------------------------------------------------------


def export_baseline(*, session: Session, settings: Settings, ctx: AuditContext) -> Baseline:
    """Every active suppression as a baseline; value digests sealed. Audited."""
    out = Baseline()
    for row in list_suppressions(session=session, active_only=True, limit=baseline_format.MAX_ENTRIES):
        entry: dict[str, Any] = {"family": row.family, "detector": row.detector,
                                 "sha256": row.sha256, "path_pattern": row.path_pattern,
                                 "reason": row.reason,
                                 "expires_at": row.expires_at.isoformat() if row.expires_at else None}
        if row.digest is not None and row.detector is not None:
            entry["sealed"] = seal(settings, row.detector, row.digest)
        out.add({k: v for k, v in entry.items() if v is not None or k == "expires_at"})
    audit.record(session=session, ctx=ctx, action="suppressions.export", target="suppressions",
                 details={"entries": len(out.entries)})
    return out


def import_baseline(*, session: Session, settings: Settings, data: Any, ctx: AuditContext,
                    kv: redis.Redis | None) -> tuple[dict[str, int], Deliveries]:
    """Add a baseline's entries as suppressions (all or nothing). Entries already in force,
    expired ones, and value entries this platform cannot open (made by a local command,
    or sealed by another platform) are counted and skipped."""
    try:
        parsed = baseline_format.from_mapping(data)
    except BaselineError as exc:
        raise InvalidInput(f"baseline: {exc}") from None
    counts = {"added": 0, "existing": 0, "expired": 0, "unusable": 0}
    now = utcnow()
    current = {(r.family, r.detector, r.digest, r.sha256, r.path_pattern)
               for r in list_suppressions(session=session, active_only=True,
                                          limit=baseline_format.MAX_ENTRIES)}
    added: list[Suppression] = []
    for entry in parsed.entries:
        expires = baseline_format.parse_when(entry.get("expires_at"))
        if expires is not None and expires <= now:
            counts["expired"] += 1
            continue
        digest = None
        if entry.get("digest"):
            counts["unusable"] += 1  # keyed with the file's salt: only local runs can match it
            continue
        if entry.get("sealed"):
            digest = unseal(settings, entry["detector"], entry["sealed"])
            if digest is None:
                counts["unusable"] += 1
                continue
        key = (entry["family"], entry.get("detector"), digest, entry.get("sha256"),
               entry.get("path_pattern"))
        if key in current:
            counts["existing"] += 1
            continue
        current.add(key)
        row = Suppression(family=entry["family"], detector=entry.get("detector"), digest=digest,
                          sha256=entry.get("sha256"), path_pattern=entry.get("path_pattern"),
                          reason=entry["reason"], expires_at=expires, origin="baseline",
                          created_by=ctx.actor[:120], created_at=now)
        session.add(row)
        added.append(row)
    session.flush()
    counts["added"] = len(added)
    audit.record(session=session, ctx=ctx, action=IMPORTED, target="suppressions",
                 details={**counts, "ids": [r.id for r in added][:100]})
    outcome = monitor.log_security_event(
        IMPORTED, {**counts, "subject": "suppressions", "created_by": ctx.actor}, "medium",
        session=session, kv=kv)
    return counts, outcome.deliveries

