"""API-, worker- and beat-like processes writing one SQLite file at once: no "locked" error."""

from __future__ import annotations

import multiprocessing as mp
import os

from sqlalchemy import func, select

from secops.config import get_settings
from secops.db.models import Job
from secops.db.session import dispose_engines, session_scope


def _writer(env: dict[str, str], n: int, out: mp.Queue) -> None:
    os.environ.update(env)
    get_settings.cache_clear()
    dispose_engines()
    from secops.services import jobs as job_service

    errors = 0
    for i in range(n):
        try:
            with session_scope() as s:  # create, like the API
                job = job_service.create_job(session=s, kind="system.ping",
                                             params={"message": str(i)}, submitted_by="t")
                s.flush()
                job_id = job.id
            with session_scope() as s:  # claim and finish, like a worker
                job_service.claim_job(session=s, job_id=job_id, time_limit=10, max_attempts=3)
            with session_scope() as s:
                job_service.list_jobs(session=s, limit=5)  # read, like beat or a GET
                job_service.complete_job(session=s, job_id=job_id, result={"i": i})
        except Exception as exc:  # noqa: BLE001 - count every failure, of any kind
            errors += 1
            out.put(repr(exc))
    out.put(errors)


def test_concurrent_writers_never_fail(sqlite_env):
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(dict(sqlite_env), 60, out)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    assert results == [0, 0, 0, 0], results
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Job).where(
            Job.status == "succeeded")) == 240


def test_read_sessions_never_take_or_wait_for_the_write_lock(sqlite_env):
    import threading

    import pytest
    from fastapi.testclient import TestClient
    from sqlalchemy.exc import OperationalError

    from secops.api.app import create_app
    from secops.db.session import get_read_sessionmaker
    from secops.services import jobs as job_service
    from tests.factories import auth, make_key

    key = make_key()
    client = TestClient(create_app(), raise_server_exceptions=False)
    answers: list[int] = []
    with session_scope() as writer:  # BEGIN IMMEDIATE: holds the write lock until it ends
        job_service.create_job(session=writer, kind="system.ping", params={}, submitted_by="t")
        writer.flush()
        # an authenticated read, from another thread, while the lock is held
        thread = threading.Thread(target=lambda: answers.append(
            client.get("/v1/jobs", headers=auth(key)).status_code))
        thread.start()
        thread.join(10)
        assert answers == [200], "a read waited for the write lock"
        with get_read_sessionmaker()() as reader:  # and a reader cannot write
            job_service.create_job(session=reader, kind="system.ping", params={},
                                   submitted_by="t")
            with pytest.raises(OperationalError, match="readonly"):
                reader.flush()
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 1
