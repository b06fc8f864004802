"""FastAPI dependencies: a session per request, the authenticated principal, permissions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from secops.api.permissions import ALL_PERMISSIONS, allowed
from secops.db.session import get_sessionmaker
from secops.errors import AuthenticationFailed, PermissionDenied
from secops.services import keys as key_service


def db_session() -> Iterator[Session]:
    """One session per request; the route commits what it changes, the rest is rolled back."""
    session = get_sessionmaker()()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


@dataclass(frozen=True)
class Principal:
    key_id: str
    name: str
    role: str
    allowed_kinds: frozenset[str] = field(default_factory=frozenset)

    @property
    def actor(self) -> str:
        return f"key:{self.key_id}"

    def may_submit(self, kind: str) -> bool:
        return self.role != "service" or kind in self.allowed_kinds

    @property
    def sees_only_own(self) -> bool:
        return self.role == "service"


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def authenticated(request: Request, session: Session = Depends(db_session)) -> Principal:
    try:
        record = key_service.authenticate(session=session, token=_bearer(request))
    except AuthenticationFailed:
        raise
    key_service.record_use(session=session, key_id=record.id)
    session.commit()
    request.scope.setdefault("state", {})["authenticated"] = True
    return Principal(record.id, record.name, record.role, frozenset(record.allowed_kinds or []))


def require(permission: str) -> Callable[..., Principal]:
    """A dependency that authenticates and checks ``permission``; routes declare it."""
    if permission not in ALL_PERMISSIONS:
        raise ValueError(f"unknown permission {permission}")

    def dependency(principal: Principal = Depends(authenticated)) -> Principal:
        if not allowed(principal.role, permission):
            raise PermissionDenied("this key's role does not allow that")
        return principal

    dependency.permission = permission  # type: ignore[attr-defined]
    return dependency
