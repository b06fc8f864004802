"""Factories for test data, through the real services."""

from __future__ import annotations

from secops.db.session import session_scope
from secops.services import keys as key_service


def make_key(role: str = "admin", kinds: list[str] | None = None, name: str = "test") -> str:
    with session_scope() as session:
        issued = key_service.create_key(session=session, name=name, role=role,
                                        created_by="tests", allowed_kinds=kinds)
        return issued.plaintext


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
