"""``/.well-known/security.txt`` (RFC 9116) from the settings, and the console's static files.

security.txt is served only when a contact is configured (``SECOPS_SECURITY_TXT_CONTACT``)
and an expiry (``SECOPS_SECURITY_TXT_EXPIRES``, an ISO 8601 date-time with a zone); the
RFC requires both fields. An expiry in the past or more than a year ahead is served as
configured but logged as a warning, and the compliance matrix reports it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from secops.api.console.web import HERE
from secops.api.deps import public
from secops.config import get_settings
from secops.errors import NotFound

router = APIRouter(include_in_schema=False)
log = logging.getLogger("secops.api")
STATIC = {"console.js": "text/javascript; charset=utf-8", "console.css": "text/css; charset=utf-8"}


def security_txt() -> str | None:
    """The file's text, or None when it is not configured."""
    settings = get_settings()
    if not settings.security_txt_contact or not settings.security_txt_expires:
        return None
    expires = datetime.fromisoformat(settings.security_txt_expires)
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    expires = expires.astimezone(UTC)
    days = (expires - datetime.now(UTC)).days
    if days < 0 or days > 366:
        log.warning("security.txt Expires is out of range", extra={"days_ahead": days})
    lines = [f"Contact: {c}" for c in settings.security_txt_contact]
    lines.append(f"Expires: {expires.strftime('%Y-%m-%dT%H:%M:%S.000Z')}")
    if settings.security_txt_policy:
        lines.append(f"Policy: {settings.security_txt_policy}")
    if settings.security_txt_languages:
        lines.append(f"Preferred-Languages: {settings.security_txt_languages}")
    canonical = settings.security_txt_canonical or (
        f"{settings.console_origin_value()}/.well-known/security.txt")
    lines.append(f"Canonical: {canonical}")
    return "\n".join(lines) + "\n"


@router.get("/.well-known/security.txt", dependencies=[Depends(public())])
def well_known_security_txt() -> Response:
    text = security_txt()
    if text is None:
        raise NotFound("no security.txt is configured")
    return PlainTextResponse(text, media_type="text/plain; charset=utf-8")


@router.get("/console/static/{name}", dependencies=[Depends(public())])
def static(name: str) -> Response:
    media = STATIC.get(name)
    if media is None:
        raise NotFound("no such file")
    return Response((HERE / "static" / name).read_bytes(), media_type=media,
                    headers={"Cache-Control": "no-cache"})


@router.get("/", dependencies=[Depends(public())])
def root() -> Response:
    return RedirectResponse("/console/", status_code=303)
