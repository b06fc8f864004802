"""Fixtures of the privacy tests: the sample shop on SQLite or PostgreSQL, keys, a map."""

from __future__ import annotations

import re
import secrets
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from secops.config import get_settings
from tests.privacy import shop


@dataclass
class Shop:
    kind: str
    url: str
    engine: sa.Engine
    map_path: Path
    tmp: Path

    def write_map(self, text: str, name: str = "map.yaml") -> Path:
        path = self.tmp / name
        path.write_text(text, encoding="utf-8")
        return path


@dataclass
class Keys:
    hmac: bytes
    signing: Ed25519PrivateKey
    public_pem_path: Path


@pytest.fixture
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Keys:
    """The two secrets, given to the secret reader through SECOPS_* variables."""
    hmac_key = "privacy-test-" + secrets.token_hex(16)
    signing = Ed25519PrivateKey.generate()
    pem = signing.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    monkeypatch.setenv("SECOPS_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SECOPS_PRIVACY_HMAC", hmac_key)
    monkeypatch.setenv("SECOPS_PRIVACY_SIGNING_KEY", pem)
    get_settings.cache_clear()
    public = tmp_path / "receipt-key.pub"
    public.write_bytes(
        signing.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return Keys(hmac_key.encode(), signing, public)


def pg_schema_url(pg_database: str, schema: str) -> str:
    return f"{pg_database}?options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def shop_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Shop]:
    """The sample shop, seeded, in a SQLite file or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'shop.db'}"
        admin = None
        schema = ""
    else:
        base = request.getfixturevalue("pg_database")
        schema = "shop_" + uuid.uuid4().hex[:10]
        admin = sa.create_engine(base)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url = pg_schema_url(base, schema)
    engine = sa.create_engine(url)
    if request.param == "sqlite":
        sa.event.listen(engine, "connect", lambda c, _r: c.execute("PRAGMA foreign_keys=ON"))
    shop.create(engine)
    map_path = tmp_path / "shop.yaml"
    map_path.write_text(shop.MAP.format(url=url), encoding="utf-8")
    yield Shop(request.param, url, engine, map_path, tmp_path)
    engine.dispose()
    if admin is not None:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


class Mailbox:
    """Messages a real SMTP server on loopback (aiosmtpd) received."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802
        self.messages.append(message_from_bytes(envelope.content, policy=default))  # type: ignore[attr-defined]
        return "250 OK"

    def codes(self) -> list[str]:
        return [re.search(r"\b(\d{6})\b", m.get_content()).group(1) for m in self.messages]  # type: ignore[union-attr]


@pytest.fixture
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    from aiosmtpd.controller import Controller

    box = Mailbox()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture
def privacy_platform(platform_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                     smtp_server: tuple[Mailbox, int]) -> Iterator[dict[str, Any]]:
    """The platform's settings plus a SQLite sample shop, privacy secrets and an SMTP server."""
    box, port = smtp_server
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    engine = sa.create_engine(url)
    shop.create(engine)
    map_path = tmp_path / "shop.yaml"
    map_path.write_text(shop.MAP.format(url=url), encoding="utf-8")
    signing = Ed25519PrivateKey.generate()
    extra = {
        "SECOPS_PRIVACY_MAP": str(map_path),
        "SECOPS_PRIVACY_HMAC": "privacy-test-" + secrets.token_hex(16),
        "SECOPS_PRIVACY_SIGNING_KEY": signing.private_bytes_raw().hex(),
        "SECOPS_SMTP_HOST": "127.0.0.1",
        "SECOPS_SMTP_PORT": str(port),
        "SECOPS_SMTP_STARTTLS": "false",
        "SECOPS_SMTP_FROM": "privacy@shop.example",
    }
    for key, value in extra.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield {"env": {**platform_env, **extra}, "mailbox": box, "engine": engine, "signing": signing,
           "hmac": extra["SECOPS_PRIVACY_HMAC"].encode()}
    engine.dispose()
