"""Drill: the API process is SIGKILLed while it receives a large upload, streamed slowly.

Nothing of the upload reaches the store or the database: no stored file, no scan, job or
stored-file row. Its staging file (the API had started writing it) is removed when the
API starts again, and the next upload is stored and recorded whole. With the data
directory on a small tmpfs (when the tests run as root), an upload that fills it is a
503 problem and leaves nothing half-written either. Real uvicorn processes and a real
socket client; bounded in time."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from secops.config import get_settings
from secops.db.models import Job, ScanResult, StoredFile
from secops.db.session import session_scope
from secops.services.storage import get_store
from tests.factories import auth, make_key
from tests.platform.helpers import files_under
from tests.processes import start_api

pytestmark = pytest.mark.integration
BOUNDARY = "drillboundary7MA4YWxkTrZu0gW"
SIZE = 8 << 20  # announced; the client sends only part of it before the kill


def _counts() -> dict[str, int]:
    with session_scope() as s:
        return {model.__name__: s.scalar(select(func.count()).select_from(model)) or 0
                for model in (ScanResult, Job, StoredFile)}


@pytest.fixture
def small_store(sqlite_env, tmp_path, monkeypatch):
    """The data directory on a 4 MiB tmpfs (its own file system, so a full disk is a real
    ENOSPC), when the tests may mount one (root); else on the ordinary disk (None)."""
    store = tmp_path / "store"
    store.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(store)],
        capture_output=True, check=False).returncode == 0
    monkeypatch.setenv("SECOPS_DATA_DIR", str(store))
    get_settings.cache_clear()
    try:
        yield dict(sqlite_env, SECOPS_DATA_DIR=str(store)), mounted
    finally:
        if mounted:
            subprocess.run(["umount", str(store)], check=True)


def test_api_killed_mid_upload_leaves_nothing_behind(small_store, tmp_path):
    sqlite_env, full_disk_possible = small_store
    key = make_key()
    data_dir = Path(sqlite_env["SECOPS_DATA_DIR"])
    api, url = start_api(sqlite_env, tmp_path / "api.log")
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"big.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    address = urlsplit(url)
    sock = socket.create_connection((address.hostname, address.port), timeout=30)
    try:
        sock.sendall((f"POST /v1/scans HTTP/1.1\r\nHost: {address.netloc}\r\n"
                      f"Authorization: Bearer {key}\r\n"
                      f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
                      f"Content-Length: {len(head) + SIZE + len(tail)}\r\n\r\n").encode() + head)
        sent = 0
        while not files_under(data_dir / "tmp"):  # until the API spills it to staging
            assert sent < SIZE // 2, "the API never started writing the upload"
            sock.sendall(os.urandom(64 << 10))
            sent += 64 << 10
            time.sleep(0.01)
        sock.sendall(os.urandom(256 << 10))  # and on, slowly: the API is mid-body
        time.sleep(0.2)
        api.kill()
        api.p.wait()
    finally:
        sock.close()
        api.stop()
    assert len(files_under(data_dir / "tmp")) == 1  # the dead API's staging file
    assert files_under(data_dir / "blobs") == [] and files_under(data_dir / "quarantine") == []
    assert _counts() == {"ScanResult": 0, "Job": 0, "StoredFile": 0}

    api, url = start_api(sqlite_env, tmp_path / "api2.log")
    try:
        assert files_under(data_dir / "tmp") == []  # removed at start-up
        content = os.urandom(3 << 20)
        with httpx.Client(base_url=url, headers=auth(key), timeout=60) as client:
            resp = client.post("/v1/scans", files=[("file", ("again.bin", content))])
        assert resp.status_code == 202, resp.text
        if full_disk_possible:  # another 3 MiB does not fit in the 4 MiB file system
            with httpx.Client(base_url=url, headers=auth(key), timeout=60) as client:
                full = client.post("/v1/scans", files=[("file", ("full.bin", os.urandom(3 << 20)))])
            assert full.status_code == 503, full.text
            assert full.headers["content-type"].startswith("application/problem+json")
            assert full.json()["detail"] == "the file store cannot take the upload now"
    finally:
        api.stop()
    assert "removed stale upload staging files" in api.output()
    assert api.output().count("upload could not be stored") == int(full_disk_possible)
    assert _counts() == {"ScanResult": 1, "Job": 1, "StoredFile": 1}
    assert files_under(data_dir / "tmp") == []
    store = get_store(get_settings())
    with session_scope() as s:
        rows = [scan.sha256 for scan in s.scalars(select(ScanResult))] + \
            [f.sha256 for f in s.scalars(select(StoredFile))]
    assert [store.read(sha) == content for sha in rows] == [True, True]  # no row points at nothing
    assert [p.name for p in files_under(data_dir / "blobs")] == [rows[0]]
