"""Drill: another process holds SQLite's write lock. Writes through the API are refused
with a 503 problem once the busy timeout passes (nothing half-written), reads go on
(WAL), and everything works again once the lock is released."""

from __future__ import annotations

import subprocess
import sys

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from secops.api.app import create_app
from secops.config import get_settings
from secops.db.models import Job
from secops.db.session import dispose_engines, session_scope
from tests.factories import auth, make_key
from tests.security.conftest import assert_problem

HOLD = ("import sqlite3, sys, time\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "c.execute('BEGIN IMMEDIATE')\n"
        "print('held', flush=True)\n"
        "sys.stdin.read()\n")


def test_a_held_write_lock_is_a_503_and_nothing_is_written(sqlite_env, monkeypatch):
    monkeypatch.setenv("SECOPS_SQLITE_BUSY_TIMEOUT", "1")
    get_settings.cache_clear()
    dispose_engines()
    key = make_key()
    client = TestClient(create_app(), raise_server_exceptions=False)
    path = sqlite_env["SECOPS_DATABASE_URL"].removeprefix("sqlite:///")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, path], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        resp = client.post("/v1/jobs", json={"kind": "system.ping"}, headers=auth(key))
        body = assert_problem(resp, 503)
        assert body["detail"] == "the database is busy or unavailable; try again later"
        assert resp.headers["retry-after"] == "5"
        assert client.get("/v1/jobs", headers=auth(key)).status_code == 200  # reads go on
    finally:
        holder.communicate(b"", timeout=30)  # stdin closed: the holder exits, lock released
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 0
    assert client.post("/v1/jobs", json={"kind": "system.ping"},
                       headers=auth(key)).status_code == 202
