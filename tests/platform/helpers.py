"""Running the platform for scanning and DLP tests: real API and worker processes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from secops.config import get_settings
from tests.processes import Proc, start_api, start_worker, wait_for


@contextmanager
def platform(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
             extra: dict[str, str] | None = None, worker: bool = True) -> Iterator[str]:
    """The API and (optionally) a worker on ``env`` plus ``extra``; yields the API's URL."""
    full = {**env, **(extra or {})}
    for key, value in (extra or {}).items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    procs = []
    try:
        if worker:
            procs.append(start_worker(full, tmp_path / "worker.log"))
        api, url = start_api(full, tmp_path / "api.log")
        procs.append(api)
        yield url
    finally:
        for proc in procs:
            proc.stop()


FILE_SIZE_LIMIT = 768 * 1024


@contextmanager
def api_with_file_size_limit(env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, Proc]]:
    """A real API process whose files may not grow past ``FILE_SIZE_LIMIT`` (RLIMIT_FSIZE:
    writes fail with EFBIG, as they would with ENOSPC on a full disk); yields its URL and
    the process (for its log). The SQLite database's write-ahead log, grown past the limit
    by the migrations, is emptied first so that only the file store cannot grow."""
    if env["SECOPS_DATABASE_URL"].startswith("sqlite:///"):
        import sqlite3
        from contextlib import closing

        with closing(sqlite3.connect(env["SECOPS_DATABASE_URL"].removeprefix("sqlite:///"))) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    api, url = start_api(env, tmp_path / "api.log", prefix=("prlimit", f"--fsize={FILE_SIZE_LIMIT}"))
    try:
        yield url, api
    finally:
        api.stop()


def wait_scan(client: httpx.Client, path: str, timeout: float = 60) -> dict:
    def done() -> dict | None:
        body = client.get(path).json()
        return body if body["status"] != "pending" else None

    return wait_for(done, timeout, f"{path} to finish", interval=0.1)  # type: ignore[return-value]


def wait_job(client: httpx.Client, job_id: str, timeout: float = 60) -> dict:
    def done() -> dict | None:
        body = client.get(f"/v1/jobs/{job_id}").json()
        return body if body["status"] in ("succeeded", "failed", "cancelled") else None

    return wait_for(done, timeout, f"job {job_id}", interval=0.1)  # type: ignore[return-value]


def files_under(root: Path) -> list[Path]:
    return [Path(d) / f for d, _, names in os.walk(root) for f in names] if root.exists() else []
