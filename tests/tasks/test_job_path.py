"""The worker's per-job database work, in this process on SQLite and PostgreSQL: what the
main process prepares before it forks its pool, and the statements a job costs.

On PostgreSQL the round trips are counted from libpq's own trace of the protocol
(each ends with the server's ReadyForQuery), not from anything the code reports."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, update
from sqlalchemy.engine.default import CACHE_HIT

from secops.db.base import utcnow
from secops.db.models import Job
from secops.db.session import dispose_engines, get_engine, reset_pools_after_fork, session_scope
from secops.services import jobs as job_service
from tests.factories import stored


def queued_job(**params: Any) -> str:
    with session_scope() as s:
        job = job_service.create_job(session=s, kind="system.ping", params=params,
                                     submitted_by="tests")
        s.flush()
        return job.id


def columns(job_id: str) -> dict[str, Any]:
    job = stored(Job, job_id)
    return {c: getattr(job, c) for c in Job.__table__.columns.keys()}


class Trace:
    """The frontend's queries and the round trips of every PostgreSQL connection the
    engine hands out while it is open (nothing on SQLite)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    @property
    def round_trips(self) -> int:
        return sum(1 for line in self.lines if "\tReadyForQuery" in line)

    @property
    def queries(self) -> list[str]:
        """The SQL the client sent, in order (simple and extended protocol alike)."""
        out = []
        for line in self.lines:
            parts = line.split("\t")
            if parts[0] == "F" and parts[2] in ("Query", "Parse"):
                out.append(parts[3].strip().split('"')[-2 if parts[2] == "Query" else 3])
        return out


@contextmanager
def traced() -> Iterator[Trace]:
    engine = get_engine()
    trace = Trace()
    if engine.dialect.name != "postgresql":
        yield trace
        return
    from psycopg import pq

    fd, path = tempfile.mkstemp()
    connections: list[Any] = []

    def on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        dbapi_connection.pgconn.trace(fd)
        dbapi_connection.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
        connections.append(dbapi_connection)

    event.listen(engine, "checkout", on_checkout)
    try:
        yield trace
    finally:
        event.remove(engine, "checkout", on_checkout)
        for connection in connections:
            connection.pgconn.untrace()
        os.close(fd)
        with open(path) as f:
            trace.lines = f.read().splitlines()
        os.unlink(path)


def test_a_handler_that_wrote_nothing_has_its_job_completed_alone(platform_env):
    """system.ping's handler never touches its session: the job is claimed and completed
    in one statement each (PostgreSQL: two round trips for the whole job, no BEGIN)."""
    from tasks.system import ping

    job_id = queued_job(message="alone")
    with traced() as trace:
        outcome = ping.apply(args=[job_id])
    assert outcome.successful() and outcome.result is None  # the row holds the result
    job = columns(job_id)
    assert (job["status"], job["attempts"], job["error"]) == ("succeeded", 1, None)
    assert job["result"] == {"echo": {"message": "alone", "sleep": 0.0, "fail": False}}
    assert job["finished_at"] is not None and job["lease_expires_at"] is None
    if get_engine().dialect.name == "postgresql":
        assert trace.round_trips == 2, trace.lines
        assert [q.split()[0] for q in trace.queries] == ["UPDATE", "UPDATE"]


def test_a_handler_that_writes_commits_with_the_completion(platform_env):
    """A handler that writes: its change and the job's completion are one transaction,
    committed once after the handler returns."""
    from tasks.base import run_job
    from tasks.system import ping

    job_id, other = queued_job(message="together"), queued_job()

    def handler(session: Any, job: Job) -> dict[str, Any]:
        session.execute(update(Job).where(Job.id == other).values(error="noted by the handler"))
        return {"seen": job.params["message"]}

    with traced() as trace:
        assert run_job(ping, job_id, handler) == {"seen": "together"}
    assert columns(job_id)["status"] == "succeeded"
    assert columns(job_id)["result"] == {"seen": "together"}
    assert columns(other)["error"] == "noted by the handler"
    if get_engine().dialect.name == "postgresql":
        words = [q.split()[0] for q in trace.queries]
        assert words == ["UPDATE", "BEGIN", "UPDATE", "UPDATE", "COMMIT"], trace.queries


def test_the_main_process_prepares_the_pool_processes_and_changes_nothing(platform_env):
    """warm_up (the worker's main process, before it forks its pool): no row changes, no
    connection is left open to cross the fork, and a pool process keeps the engine with
    what was prepared: its first claim and completion are compiled-statement cache hits."""
    from tasks.base import warm_up

    job_id = queued_job(message="untouched")
    before = columns(job_id)
    dispose_engines()
    warm_up()
    engine = get_engine()
    assert (engine.pool.checkedin(), engine.pool.checkedout()) == (0, 0)
    assert columns(job_id) == before
    reset_pools_after_fork()  # what each pool process does as it starts
    assert get_engine() is engine

    hits: list[bool] = []

    def on_execute(_conn: Any, _cursor: Any, statement: str, _params: Any, context: Any,
                   _many: bool) -> None:
        if statement.lstrip().upper().startswith("UPDATE JOBS"):
            hits.append(context.cache_hit is CACHE_HIT)

    event.listen(engine, "after_cursor_execute", on_execute)
    try:
        with engine.connect() as connection:
            claimed = job_service.claim_queued(connection=connection, job_id=job_id,
                                               time_limit=10, max_attempts=3)
            assert claimed is not None
            assert job_service.complete_committed(connection=connection, job_id=job_id,
                                                  result={"ok": True})
    finally:
        event.remove(engine, "after_cursor_execute", on_execute)
    assert hits == [True, True]
    assert columns(job_id)["status"] == "succeeded"


def test_warm_up_survives_an_unreachable_database(sqlite_env, monkeypatch, caplog):
    """A database that cannot be reached when the worker starts is logged, not fatal."""
    from secops.config import get_settings
    from secops.embedded import free_port
    from tasks.base import warm_up

    monkeypatch.setenv("SECOPS_DATABASE_URL",
                       f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none"
                       "?connect_timeout=2")
    get_settings.cache_clear()
    dispose_engines()
    warm_up()
    assert "could not prepare the database before starting the pool" in caplog.text
    assert get_engine().pool.checkedout() == 0


def test_publishing_threads_share_one_result_backend(sqlite_env):
    """The API publishes from many threads: they share the app's one (disabled) result
    backend rather than each resolving its own at its first publish."""
    from tasks.app import app

    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(app.backend)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 3 and seen[0] is seen[1] is seen[2]


def test_a_finished_job_is_not_completed_again(platform_env):
    """complete_committed, like complete_job, records success only for a queued or
    running job, once."""
    job_id, cancelled = queued_job(), queued_job()
    with session_scope() as s:
        job_service.cancel_job(session=s, job_id=cancelled)
    with get_engine().connect() as connection:
        assert job_service.complete_committed(connection=connection, job_id=job_id,
                                              result={"n": 1})
        assert not job_service.complete_committed(connection=connection, job_id=job_id,
                                                  result={"n": 2})
        assert not job_service.complete_committed(connection=connection, job_id=cancelled,
                                                  result={"n": 3})
    assert columns(job_id)["result"] == {"n": 1}
    assert columns(cancelled)["status"] == "cancelled"
    assert columns(cancelled)["finished_at"] <= utcnow()
