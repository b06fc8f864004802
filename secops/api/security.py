"""Request-side helpers of the security layer: client IP, audit context, event reporting.

The client IP is the socket peer, unless that peer is a trusted proxy
(``SECOPS_TRUSTED_PROXIES``, addresses or CIDRs): then ``X-Forwarded-For`` is read from
the right, skipping trusted hops, and the first untrusted address is the client. A
client cannot spoof its address by sending the header itself to a direct listener.
Per-IP rate limits count an IPv6 client by its /64 (:func:`limit_subject`).

Security events are stored in their own session and committed at once, so a request
that then fails (and rolls back) still leaves its trace; delivery jobs for new alerts
are published after that commit.
"""

from __future__ import annotations

import ipaddress
import logging
from functools import lru_cache
from typing import Any

import redis
from fastapi import Request

from secops.config import get_settings
from secops.db.session import get_sessionmaker
from secops.errors import SecOpsError
from secops.services import monitor
from secops.services.audit import AuditContext
from secops.services.redisconn import get_redis

log = logging.getLogger("secops.security")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_ip(request: Request) -> str:
    peer = request.client.host if request.client else "unknown"
    networks = _networks(tuple(get_settings().trusted_proxies))
    if not networks or not _trusted(peer, networks):
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage in the header: fall back to the proxy itself
    return peer


def limit_subject(ip: str) -> str:
    """Whom a per-IP rate limit counts: the address itself for IPv4, its /64 for IPv6
    (one host usually holds a whole /64 and could rotate through it)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return ip


def request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def audit_context(request: Request, actor: str) -> AuditContext:
    return AuditContext(actor=actor, request_id=request_id(request) or None,
                        client_ip=client_ip(request))


def optional_redis() -> redis.Redis | None:
    try:
        return get_redis()
    except SecOpsError:
        return None


def report_event(kind: str, details: dict[str, Any], severity: str = "medium", *,
                 sample_key: str | None = None, kv: redis.Redis | None = None) -> None:
    """Record a security event from the API; never lets monitoring break the response."""
    try:
        session = get_sessionmaker()()
        try:
            outcome = monitor.log_security_event(kind, details, severity, session=session,
                                                 kv=kv if kv is not None else optional_redis(),
                                                 sample_key=sample_key)
            session.commit()
        finally:
            session.close()
        publish(outcome.deliveries)
    except Exception:
        log.exception("could not record security event", extra={"event": kind})


def publish(deliveries: list[tuple[str, str]]) -> None:
    from tasks.dispatch import enqueue_or_fail

    try:
        enqueue_or_fail(deliveries)
    except SecOpsError:
        log.error("alert delivery jobs could not be queued", extra={"jobs": len(deliveries)})
