"""The certificate inventory: endpoints and file paths to watch, and what they served.

Targets are keyed so the same endpoint (host, port, SNI) or path cannot be registered
twice. File paths must lie under a directory of ``SECOPS_CERTS_ALLOWED_DIRS``: a worker
reads them, so the API never lets a caller point it at arbitrary files.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from secops.certs.model import CertsError
from secops.certs.pins import require_pinned
from secops.config import Settings
from secops.db.base import utcnow
from secops.db.models import CertSeen, CertTarget
from secops.errors import Conflict, InvalidInput, NotFound
from secops.kinds import allowed_directory

HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9_]"
                      r"([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\.?$")
TAG = re.compile(r"^[A-Za-z0-9_.:/-]{1,64}$")
MAX_TAGS, MAX_PINS = 32, 8


def valid_host(host: str) -> str:
    host = host.strip().lower()
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        pass
    if not HOSTNAME.match(host):
        raise InvalidInput(f"{host[:80]!r} is not a host name or IP address")
    return host.rstrip(".")


def valid_pins(pins: list[str]) -> list[str]:
    if len(pins) > MAX_PINS:
        raise InvalidInput(f"at most {MAX_PINS} pins per target")
    for pin in pins:
        try:
            ok = len(base64.b64decode(pin, validate=True)) == 32
        except (binascii.Error, ValueError):
            ok = False
        if not ok:
            raise InvalidInput("a pin is the base64 of a SHA-256 digest of the SPKI (pin-sha256)")
    return sorted(set(pins))


def valid_tags(tags: list[str]) -> list[str]:
    if len(tags) > MAX_TAGS or not all(TAG.match(t) for t in tags):
        raise InvalidInput(f"tags: at most {MAX_TAGS}, each 1-64 of letters, digits and _.:/-")
    return sorted(set(tags))


def endpoint_key(host: str, port: int, sni: str | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}" + (f"#{sni}" if sni else "")


def add_endpoint(*, session: Session, host: str, port: int, sni: str | None, owner: str | None,
                 tags: list[str], pins: list[str], created_by: str) -> CertTarget:
    if not 0 < port < 65536:
        raise InvalidInput("port must be from 1 to 65535")
    host = valid_host(host)
    sni = valid_host(sni) if sni else None
    target = CertTarget(kind="endpoint", key=endpoint_key(host, port, sni), host=host, port=port,
                        sni=sni, owner=owner, tags=valid_tags(tags), pins=valid_pins(pins),
                        enabled=True, created_by=created_by, last_findings=[])
    return _insert(session, target)


def add_file(*, session: Session, path: str, owner: str | None, tags: list[str], pins: list[str],
             created_by: str, settings: Settings) -> CertTarget:
    try:
        resolved = allowed_directory(path, settings.certs_allowed_dirs, purpose="certificate files",
                                     setting="SECOPS_CERTS_ALLOWED_DIRS")
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    target = CertTarget(kind="file", key=f"file:{resolved}", path=str(resolved), owner=owner,
                        tags=valid_tags(tags), pins=valid_pins(pins), enabled=True,
                        created_by=created_by, last_findings=[])
    return _insert(session, target)


def _insert(session: Session, target: CertTarget) -> CertTarget:
    try:
        with session.begin_nested():
            session.add(target)
            session.flush()
    except IntegrityError:
        raise Conflict(f"{target.key} is already in the inventory") from None
    return target


def get_target(*, session: Session, target_id: str, kind: str | None = None) -> CertTarget:
    target = session.get(CertTarget, target_id)
    if target is None or (kind is not None and target.kind != kind):
        raise NotFound("certificate target not found")
    return target


def list_targets(*, session: Session, kind: str | None = None, tag: str | None = None,
                 owner: str | None = None, limit: int = 100, offset: int = 0
                 ) -> tuple[list[CertTarget], int]:
    query = select(CertTarget)
    if kind:
        query = query.where(CertTarget.kind == kind)
    if owner:
        query = query.where(CertTarget.owner == owner)
    if not tag:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        page = session.scalars(query.order_by(CertTarget.key).limit(limit).offset(offset))
        return list(page.all()), total
    # tags are a JSON list: filtered here, portable across SQLite and PostgreSQL
    rows = [r for r in session.scalars(query.order_by(CertTarget.key)).all()
            if tag in (r.tags or [])]
    return rows[offset:offset + limit], len(rows)


def update_target(*, session: Session, target_id: str, kind: str, changes: dict[str, Any]) -> CertTarget:
    target = get_target(session=session, target_id=target_id, kind=kind)
    if "owner" in changes:
        target.owner = changes["owner"]
    if changes.get("tags") is not None:
        target.tags = valid_tags(changes["tags"])
    if changes.get("pins") is not None:
        target.pins = valid_pins(changes["pins"])
    if changes.get("enabled") is not None:
        target.enabled = bool(changes["enabled"])
    target.updated_at = utcnow()
    session.flush()
    return target


def delete_target(*, session: Session, target_id: str, kind: str) -> CertTarget:
    target = get_target(session=session, target_id=target_id, kind=kind)
    session.query(CertSeen).filter(CertSeen.target_id == target.id).delete()
    session.delete(target)
    session.flush()
    return target


def current_certificates(*, session: Session, target_id: str) -> list[CertSeen]:
    return current_certificates_of(session=session, target_ids=[target_id]).get(target_id, [])


def current_certificates_of(*, session: Session, target_ids: list[str]
                            ) -> dict[str, list[CertSeen]]:
    """Each target's current chain, leaf first, for a page of targets in one query."""
    found: dict[str, list[CertSeen]] = {}
    if not target_ids:
        return found
    for seen in session.scalars(select(CertSeen).where(CertSeen.target_id.in_(target_ids),
                                                       CertSeen.current.is_(True))
                                .order_by(CertSeen.target_id, CertSeen.position)):
        found.setdefault(seen.target_id, []).append(seen)
    return found


def history(*, session: Session, target_id: str) -> list[CertSeen]:
    return list(session.scalars(select(CertSeen).where(CertSeen.target_id == target_id)
                                .order_by(CertSeen.first_seen_at.desc(), CertSeen.id.desc())).all())


def list_certificates(*, session: Session, current_only: bool = True, expiring_within: float | None = None,
                      limit: int = 100, offset: int = 0) -> tuple[list[tuple[CertSeen, str]], int]:
    """Certificates seen with their target's key, soonest expiry first."""
    query = select(CertSeen, CertTarget.key).join(CertTarget, CertTarget.id == CertSeen.target_id)
    if current_only:
        query = query.where(CertSeen.current.is_(True))
    if expiring_within is not None:
        from datetime import timedelta
        query = query.where(CertSeen.not_after <= utcnow() + timedelta(days=expiring_within))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(CertSeen.not_after, CertSeen.id).limit(limit).offset(offset))
    return [(seen, key) for seen, key in rows], total


def certificate_gauges(session: Session) -> Iterator[Metric]:
    """``secops_cert_not_after_seconds`` and ``secops_cert_days_left`` per target (a file's
    further certificates as ``path#N``), from the certificates served at the last scan."""
    not_after = GaugeMetricFamily("secops_cert_not_after_seconds",
                                  "Expiry of the certificate a target served at its last scan "
                                  "(Unix time)", labels=["target"])
    days_left = GaugeMetricFamily("secops_cert_days_left",
                                  "Days until that certificate expires (negative once expired)",
                                  labels=["target"])
    now = utcnow()
    rows = session.execute(select(CertTarget.key, CertSeen.position, CertSeen.not_after)
                           .join(CertTarget, CertTarget.id == CertSeen.target_id)
                           .where(CertSeen.current.is_(True)).order_by(CertTarget.key, CertSeen.position))
    for key, position, expires in rows:
        label = key if position == 0 else f"{key}#{position}"
        not_after.add_metric([label], expires.timestamp())
        days_left.add_metric([label], round((expires - now).total_seconds() / 86400, 4))
    yield not_after
    yield days_left


def require_pins_allow(*, session: Session, target_id: str, chain_spki: list[str]) -> None:
    """Conflict when a new certificate for a pinned target matches none of its pins."""
    target = get_target(session=session, target_id=target_id)
    try:
        require_pinned(target.key, target.pins or [], chain_spki)
    except CertsError as exc:
        raise Conflict(str(exc)) from None
