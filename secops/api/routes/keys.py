"""/v1/keys: API key lifecycle (admin only). Every change writes an audit entry."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy.orm import Session

from secops.api.deps import Principal, db_session, require
from secops.api.security import audit_context
from secops.api.security_schemas import KeyCreate, KeyIssued, KeyRead, KeyRotate, KeyUpdate
from secops.db.models import ApiKey
from secops.services import audit
from secops.services import keys as key_service
from secops.services.redisconn import get_redis

router = APIRouter(prefix="/v1/keys", tags=["keys"])
KeyId = Annotated[str, Path(max_length=64)]


def _issued(record: ApiKey, plaintext: str) -> KeyIssued:
    return KeyIssued(**KeyRead.model_validate(record).model_dump(), key=plaintext)


def _fold_use(session: Session) -> None:
    """Current use figures: the uses Redis counted since the last flush go in first."""
    with key_service.pending_use(get_redis()) as pending:
        key_service.apply_use(session=session, pending=pending)
        session.commit()


def _summary(record: ApiKey) -> dict[str, object]:
    return {"name": record.name, "prefix": record.prefix, "role": record.role,
            "allowed_kinds": record.allowed_kinds}


@router.post("", status_code=201, response_model=KeyIssued,
             summary="Create a key (its secret is shown once)")
def create(
    body: KeyCreate,
    request: Request,
    principal: Principal = Depends(require("keys:manage")),
    session: Session = Depends(db_session),
) -> KeyIssued:
    issued = key_service.create_key(session=session, name=body.name, role=body.role,
                                    created_by=principal.actor, allowed_kinds=body.allowed_kinds,
                                    expires_in_days=body.expires_in_days)
    record = issued.record
    audit.record(session=session, ctx=audit_context(request, principal.actor),
                 action="keys.create", target=f"key:{record.id}",
                 details={**_summary(record), "expires_at": record.expires_at})
    session.commit()
    return _issued(record, issued.plaintext)


@router.get("", response_model=list[KeyRead], summary="List keys (never their secrets)")
def list_all(
    principal: Principal = Depends(require("keys:manage")),
    session: Session = Depends(db_session),
    include_revoked: Annotated[bool, Query()] = False,
) -> list[ApiKey]:
    _fold_use(session)
    return key_service.list_keys(session=session, include_revoked=include_revoked)


@router.get("/{key_id}", response_model=KeyRead, summary="Get a key by id or prefix")
def get(
    key_id: KeyId,
    principal: Principal = Depends(require("keys:manage")),
    session: Session = Depends(db_session),
) -> ApiKey:
    _fold_use(session)
    return key_service.get_key(session=session, key_id=key_id)


@router.patch("/{key_id}", response_model=KeyRead, summary="Rename a key or change its role")
def update(
    key_id: KeyId,
    body: KeyUpdate,
    request: Request,
    principal: Principal = Depends(require("keys:manage")),
    session: Session = Depends(db_session),
) -> ApiKey:
    before = _summary(key_service.get_key(session=session, key_id=key_id))
    record = key_service.update_key(session=session, key_id=key_id, name=body.name,
                                    role=body.role, allowed_kinds=body.allowed_kinds)
    action = "keys.role_change" if before["role"] != record.role else "keys.update"
    audit.record(session=session, ctx=audit_context(request, principal.actor), action=action,
                 target=f"key:{record.id}", details={"before": before, "after": _summary(record)})
    session.commit()
    return record


@router.post("/{key_id}/rotate", response_model=KeyIssued,
             summary="Issue a new secret; the old one works for a grace period")
def rotate(
    key_id: KeyId,
    request: Request,
    principal: Principal = Depends(require("keys:manage")),
    session: Session = Depends(db_session),
    body: KeyRotate | None = None,
) -> KeyIssued:
    issued = key_service.rotate_key(session=session, key_id=key_id,
                                    grace_hours=body.grace_hours if body else None)
    record = issued.record
    audit.record(session=session, ctx=audit_context(request, principal.actor),
                 action="keys.rotate", target=f"key:{record.id}",
                 details={"prefix": record.prefix,
                          "previous_valid_until": record.previous_valid_until})
    session.commit()
    return _issued(record, issued.plaintext)


@router.post("/{key_id}/revoke", response_model=KeyRead,
             summary="Revoke a key: refused by every API process from the next request")
def revoke(
    key_id: KeyId,
    request: Request,
    principal: Principal = Depends(require("keys:manage")),
    session: Session = Depends(db_session),
) -> ApiKey:
    record = key_service.get_key(session=session, key_id=key_id)
    already = record.revoked_at is not None
    record = key_service.revoke_key(session=session, key_id=key_id)
    if not already:
        audit.record(session=session, ctx=audit_context(request, principal.actor),
                     action="keys.revoke", target=f"key:{record.id}", details=_summary(record))
    session.commit()
    return record
