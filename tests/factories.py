"""Factories for test data, through the real services."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from secops.db.base import utcnow
from secops.db.models import StoredFile
from secops.db.session import session_scope
from secops.services import keys as key_service


def make_key(role: str = "admin", kinds: list[str] | None = None, name: str = "test") -> str:
    with session_scope() as session:
        issued = key_service.create_key(session=session, name=name, role=role,
                                        created_by="tests", allowed_kinds=kinds)
        return issued.plaintext


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def key_id_of(key: str) -> str:
    """The id of the key whose plaintext is ``key`` (looked up by its visible prefix)."""
    match = key_service.KEY_PATTERN.match(key)
    assert match is not None
    with session_scope() as session:
        return key_service.get_key(session=session, key_id=match.group(1)).id


Row = TypeVar("Row")


def stored(model: type[Row], key: Any) -> Row:
    """The row of ``model`` with primary key ``key`` as the database holds it now,
    detached from its session (it must exist)."""
    with session_scope() as s:
        row = s.get(model, key)
        assert row is not None, (model, key)
        s.expunge(row)
        return row


def stored_file(store: Any, data: bytes, *, state: str = "stored",
                age: timedelta = timedelta(days=400)) -> str:
    """Content placed in ``store`` with its StoredFile row, last changed ``age`` ago."""
    staged = store.stage_bytes(data, "f.bin")
    store.commit(staged, quarantined=state == "quarantined")
    when = utcnow() - age
    with session_scope() as s:
        s.add(StoredFile(sha256=staged.sha256, size=len(data), state=state, created_at=when,
                         updated_at=when, quarantined_at=when if state == "quarantined" else None))
    return str(staged.sha256)
