"""Single-job submits committed together (secops.api.submission's group commit), on a
real SQLite or PostgreSQL database and a real Redis broker.

The chain's head is held locked from another connection while the submits arrive, so
they are all waiting in the API process when it is released and are written together;
on PostgreSQL the rows' ``xmin`` (the id of the transaction that wrote them) shows which
rows one transaction wrote, independently of the code under test."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from fastapi.testclient import TestClient

from secops.api.app import create_app
from secops.api.deps import Principal
from secops.api.submission import submit_one
from secops.config import get_settings
from secops.db.models import AuditEntry, Job
from secops.db.session import get_engine, session_scope
from secops.services import audit
from secops.services.audit import AuditContext
from tests.factories import auth, make_key

PROBLEM = "application/problem+json"
N = 12


@pytest.fixture
def client(platform_env: dict[str, str]) -> TestClient:
    return TestClient(create_app(), raise_server_exceptions=False)


@contextmanager
def head_locked() -> Iterator[None]:
    """The audit chain's head (and on SQLite the whole database) locked for writing by
    another connection until the block ends; the head row must exist."""
    url = get_settings().resolved_database_url
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(sa.text(
                "SELECT last_seq FROM audit_chain_head WHERE id = 1 FOR UPDATE")).first()
            assert row is not None
            yield
            conn.rollback()
    finally:
        engine.dispose()


def together(calls: list[Callable[[], Any]], hold: float = 0.5) -> list[Any]:
    """Run ``calls`` in threads at once while the head is locked (released after
    ``hold`` seconds, when they are all waiting); their results (or exceptions), in order."""
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            results[i] = calls[i]()
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    with head_locked():
        for t in threads:
            t.start()
        time.sleep(hold)
    for t in threads:
        t.join(60)
        assert not t.is_alive()
    return results


def submit(client: TestClient, key: str, body: dict[str, Any],
           headers: dict[str, str] | None = None) -> Callable[[], Any]:
    return lambda: client.post("/v1/jobs", json=body, headers={**auth(key), **(headers or {})})


def ping(message: str) -> dict[str, Any]:
    return {"kind": "system.ping", "params": {"message": message}}


def published_ids(env: dict[str, str]) -> list[str]:
    """The job ids of the messages on the queues system.ping and audit.verify go to
    (Celery's task id is the job id)."""
    import json

    kv = redis.Redis.from_url(env["SECOPS_REDIS_URL"])
    raw = kv.lrange("default", 0, -1) + kv.lrange("audit", 0, -1)
    return [json.loads(m)["headers"]["id"] for m in raw]


def jobs_and_entries() -> tuple[dict[str, Any], dict[str, Any]]:
    """Job id -> its row's transaction id, and the submit entries' job id -> theirs
    (PostgreSQL's xmin; None on SQLite)."""
    pg = get_settings().resolved_database_url.startswith("postgresql")
    xmin = sa.literal_column("xmin::text") if pg else sa.null()
    with get_engine().connect() as conn:
        jobs = conn.execute(sa.select(Job.id, xmin)).all()
        entries = conn.execute(
            sa.select(AuditEntry.target, xmin).where(AuditEntry.action == "jobs.submit")).all()
    assert len({t for t, _ in entries}) == len(entries)  # never two entries for one job
    return dict(jobs), {target.removeprefix("job:"): tx for target, tx in entries}


def chain_verifies() -> audit.VerifyResult:
    with session_scope() as session:
        return audit.verify(session=session)


def test_concurrent_submits_each_commit_their_job_and_entry_together(client, platform_env):
    key = make_key()
    first = client.post("/v1/jobs", json=ping("first"), headers=auth(key))  # the head row
    assert first.status_code == 202, first.text
    answers = together([submit(client, key, ping(str(i))) for i in range(N)])
    assert [a.status_code for a in answers] == [202] * N, [a.text for a in answers]
    ids = [a.json()["id"] for a in answers]
    assert sorted(a.json()["params"]["message"] for a in answers) == sorted(map(str, range(N)))
    assert len(set(ids)) == N
    jobs, entries = jobs_and_entries()
    assert set(jobs) == set(entries) == {*ids, first.json()["id"]}  # one entry per job
    result = chain_verifies()
    with session_scope() as session:
        assert result.ok and result.checked == session.scalar(
            sa.select(sa.func.count()).select_from(AuditEntry))
    assert sorted(published_ids(platform_env)) == sorted({*ids, first.json()["id"]})
    with get_engine().connect() as conn:  # no result yet: SQL NULL, not JSON null
        assert conn.execute(sa.select(sa.func.count()).select_from(Job).where(
            Job.result.is_(None), Job.error.is_(None), Job.status == "queued")).scalar() == N + 1
    if platform_env["SECOPS_DATABASE_URL"].startswith("postgresql"):
        # each job's row and its entry in one transaction; fewer transactions than jobs
        assert all(jobs[i] == entries[i] for i in ids)
        assert len({jobs[i] for i in ids}) < N


def test_a_bad_submit_fails_alone(client, platform_env):
    key = make_key()
    first = client.post("/v1/jobs", json=ping("first"), headers=auth(key))
    assert first.status_code == 202
    bad = {"kind": "system.ping", "params": {"unknown": 1}}
    single = {"kind": "audit.verify", "params": {}}
    calls = [submit(client, key, ping(str(i))) for i in range(N)]
    calls[3] = submit(client, key, bad)
    calls[7] = submit(client, key, single)
    calls[9] = submit(client, key, single)  # only one of the two may be queued
    answers = together(calls)
    statuses = [a.status_code for a in answers]
    assert statuses[3] == 422
    assert sorted([statuses[7], statuses[9]]) == [202, 409]
    for i in (3, 7, 9):
        if statuses[i] != 202:
            body = answers[i].json()
            assert answers[i].headers["content-type"].startswith(PROBLEM)
            assert body["status"] == statuses[i]
    good = [a.json()["id"] for i, a in enumerate(answers) if a.status_code == 202]
    assert len(good) == N - 2
    jobs, entries = jobs_and_entries()
    assert set(jobs) == set(entries) == {*good, first.json()["id"]}
    assert chain_verifies().ok
    assert sorted(published_ids(platform_env)) == sorted({*good, first.json()["id"]})


def test_idempotency_keys_deduplicate_under_concurrency(client, platform_env):
    key = make_key()
    first = client.post("/v1/jobs", json=ping("first"), headers=auth(key))
    assert first.status_code == 202
    keys = [f"key-{i}" for i in range(N // 2)]
    calls = [submit(client, key, ping(k), {"Idempotency-Key": k}) for k in keys for _ in (0, 1)]
    answers = together(calls)
    named: dict[str, set[str]] = {k: set() for k in keys}
    for (k, answer) in zip([k for k in keys for _ in (0, 1)], answers, strict=True):
        assert answer.status_code in (202, 409), answer.text
        if answer.status_code == 202:
            named[k].add(answer.json()["id"])
    assert all(len(ids) == 1 for ids in named.values()), named  # one job per key
    jobs, entries = jobs_and_entries()
    made = {i for ids in named.values() for i in ids}
    assert set(jobs) == set(entries) == {*made, first.json()["id"]}
    if platform_env["SECOPS_DATABASE_URL"].startswith("postgresql"):
        assert len({jobs[i] for i in made}) < len(made)  # written together
    for k in keys:  # a repeat now answers with the job the key made
        again = client.post("/v1/jobs", json=ping(k), headers={**auth(key), "Idempotency-Key": k})
        assert again.status_code == 202 and {again.json()["id"]} == named[k]
    assert len(jobs_and_entries()[0]) == len(keys) + 1


@pytest.mark.postgres
@pytest.mark.parametrize("platform_env", ["postgresql"], indirect=True)
def test_a_failing_transaction_is_retried_one_by_one_and_publishes_nothing_for_it(
        platform_env):
    """A submit whose row the database refuses (an actor longer than the column: SQLite
    does not check lengths) makes the group's transaction fail: each submit is then
    written alone, only that one fails, and nothing is published for it."""
    ctx = AuditContext(actor="tests")
    first = submit_one(principal=Principal("seed", "seed", "admin"), kind="system.ping",
                       params={}, idempotency_key=None, body={}, audit_ctx=ctx)
    principals = [Principal(f"good-{i}", "good", "admin") for i in range(N)]
    principals[5] = Principal("x" * 100, "too long", "admin")  # submitted_by is 80 wide
    outcomes = together([
        (lambda p=p: submit_one(principal=p, kind="system.ping", params={"message": p.name},
                                idempotency_key=None, body={}, audit_ctx=ctx))
        for p in principals])
    assert isinstance(outcomes[5], sa.exc.DataError), outcomes[5]
    good = [o.id for i, o in enumerate(outcomes) if i != 5]
    assert all(isinstance(o, Job) for i, o in enumerate(outcomes) if i != 5)
    jobs, entries = jobs_and_entries()
    assert set(jobs) == set(entries) == {*good, first.id}
    assert len({jobs[i] for i in good}) == N - 1  # written one by one after the failure
    assert chain_verifies().ok
    assert sorted(published_ids(platform_env)) == sorted({*good, first.id})


def test_record_many_chains_entries_in_order(platform_env):
    """Several entries under one lock: consecutive, linked, verifiable, and the rows of
    another table written with them."""
    ctx = AuditContext(actor="tests", request_id="r1", client_ip="127.0.0.1")
    with session_scope() as session:
        one = audit.record(session=session, ctx=ctx, action="a.one", target="t:1")
    with session_scope() as session:
        many = audit.record_many(session=session, entries=[
            (ctx, "a.many", f"t:{i}", {"i": i}) for i in range(5)], rows=[
            (Job.__table__, [job_row(f"00000000-0000-4000-8000-00000000000{i}")
                             for i in range(3)])])
    assert [e.seq for e in many] == [one.seq + 1 + i for i in range(5)]
    assert many[0].prev_hash == one.hash
    assert all(b.prev_hash == a.hash for a, b in zip(many, many[1:], strict=False))
    result = chain_verifies()
    assert result.ok and result.head_seq == many[-1].seq and result.head_hash == many[-1].hash
    with session_scope() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Job)) == 3
        stored = session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "a.many")
                                 .order_by(AuditEntry.seq)).all()
    assert [(e.target, e.details) for e in stored] == [(f"t:{i}", {"i": i}) for i in range(5)]


def job_row(job_id: str) -> dict[str, Any]:
    from secops.db.base import utcnow

    now = utcnow()
    return {"id": job_id, "kind": "system.ping", "status": "queued", "params": {"a": [1]},
            "result": None, "error": None, "attempts": 0, "submitted_by": "tests",
            "idempotency_key": None, "created_at": now, "updated_at": now,
            "started_at": None, "finished_at": None, "lease_expires_at": None}



@pytest.mark.postgres
@pytest.mark.parametrize("platform_env", ["postgresql"], indirect=True)
def test_a_groups_append_statement_is_compiled_once_per_shape(platform_env):
    """The append runs while the head is locked: SQLAlchemy must find it in its compiled
    cache from the second write of a group of that size on (it compiles a statement with
    no cache key, such as a multi-row VALUES insert, at every execution)."""
    from sqlalchemy.engine.default import CacheStats

    ctx = AuditContext(actor="tests")
    seen: list[tuple[str, Any]] = []

    def note(_conn, _cursor, statement, _params, context, _many):
        seen.append((statement, context.cache_hit))

    sa.event.listen(get_engine(), "after_cursor_execute", note)
    try:
        for round_ in range(3):
            with session_scope() as session:
                audit.record_many(session=session, entries=[
                    (ctx, "a.cached", f"t:{round_}:{i}", {"i": i}) for i in range(4)], rows=[
                    (Job.__table__, [job_row(f"00000000-0000-4000-8000-0000000000{round_}{i}")
                                     for i in range(4)])])
    finally:
        sa.event.remove(get_engine(), "after_cursor_execute", note)
    appends = [hit for statement, hit in seen if "INSERT INTO audit_log" in statement]
    assert len(appends) == 3 and appends[1:] == [CacheStats.CACHE_HIT] * 2, appends
    assert chain_verifies().ok


def _batch(n: int, slow: int | None = None) -> list[Any]:
    from secops.api.submission import _Submit

    ctx = AuditContext(actor="tests")
    return [_Submit("slow" if i == slow else f"actor-{i}", "system.ping",
                    {"message": str(i)}, None, ctx, None) for i in range(n)]


def _checkouts(engine: sa.Engine) -> list[object]:
    """The connections taken from ``engine``'s pool from now on: one per transaction of
    the group write (each attempt opens a session of its own)."""
    seen: list[object] = []
    sa.event.listen(engine, "checkout", lambda dbapi, record, proxy: seen.append(record))
    return seen


def test_a_database_that_refuses_the_group_fails_it_once_not_once_per_submit(
        sqlite_env, monkeypatch):
    """A write lock held by another process fails the group's transaction; nothing one
    submit did could cause that, so the submits are not each tried again (which would
    keep every waiting request for a busy timeout each): all fail at once with a 503."""
    from secops.api.submission import _write
    from secops.db.session import dispose_engines
    from secops.errors import DatabaseUnavailable

    monkeypatch.setenv("SECOPS_SQLITE_BUSY_TIMEOUT", "0.3")
    get_settings.cache_clear()
    dispose_engines()
    taken = _checkouts(get_engine())
    batch = _batch(8)
    with head_locked():
        _write(batch)
    assert len(taken) == 1
    assert all(isinstance(s.error, DatabaseUnavailable) and s.job is None for s in batch)
    assert len({id(s.error) for s in batch}) == 8   # each request raises its own
    assert jobs_and_entries() == ({}, {})


SLOW_COMMIT = """
CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(20); RETURN NULL; END $$;
CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON jobs DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW WHEN (NEW.submitted_by = 'slow') EXECUTE FUNCTION slow_commit();
"""


@pytest.mark.postgres
@pytest.mark.parametrize("platform_env", ["postgresql"], indirect=True)
def test_a_group_whose_commit_got_no_answer_is_not_written_again(platform_env):
    """The connection is lost during the COMMIT (the server process is terminated while
    a deferred trigger runs in it): the database may or may not have committed, so the
    group is not written again under new job ids; every submit fails with a 503 and the
    client retries (with its Idempotency-Key)."""
    from secops.api.submission import _write
    from secops.errors import DatabaseUnavailable

    with get_engine().begin() as conn:
        conn.exec_driver_sql(SLOW_COMMIT)
    batch = _batch(6, slow=2)
    writer = threading.Thread(target=_write, args=(batch,))
    writer.start()
    killer = sa.create_engine(get_settings().resolved_database_url)
    try:
        with killer.connect() as conn:
            for _ in range(300):
                pid = conn.execute(sa.text(
                    "SELECT pid FROM pg_stat_activity WHERE wait_event = 'PgSleep' "
                    "AND datname = current_database()")).scalar()
                if pid is not None:
                    break
                time.sleep(0.05)
            assert pid is not None, "the COMMIT never reached the deferred trigger"
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        killer.dispose()
    writer.join(60)
    assert not writer.is_alive()
    assert all(isinstance(s.error, DatabaseUnavailable) and s.job is None for s in batch)
    assert jobs_and_entries() == ({}, {})   # terminated mid-COMMIT: rolled back, not redone


def test_a_writer_always_writes_its_own_submit(platform_env):
    """More submits waiting than one write takes: whichever thread writes takes its own
    submit with the oldest others, so no request is left without its job."""
    from secops.api.submission import GroupCommit

    group = GroupCommit(limit=2)
    first = group.write(_batch(1)[0])   # (the chain's head row exists from then on)
    batch = _batch(6)
    outcomes = together([(lambda s=s: group.write(s)) for s in batch])
    assert [o.submitted_by if isinstance(o, Job) else o for o in outcomes] == [
        s.actor for s in batch]
    jobs, entries = jobs_and_entries()
    assert set(jobs) == set(entries) == {first.id, *(o.id for o in outcomes)}
    assert chain_verifies().ok


def test_each_submit_returns_only_once_its_message_is_published(platform_env):
    """The writer publishes the whole group's messages right after its commit: every
    submit of the group, its own and the waiting ones, returns with its message on the
    queue already (what the worker receives is what the requests answered)."""
    from secops.api.submission import GroupCommit

    group = GroupCommit()
    seen: dict[str, list[str]] = {}

    def write_and_look(submit: Any) -> Job:
        job = group.write(submit)
        seen[job.id] = published_ids(platform_env)   # as the request answers
        return job

    first = write_and_look(_batch(1)[0])
    assert seen[first.id] == [first.id]
    outcomes = together([(lambda s=s: write_and_look(s)) for s in _batch(N)])
    ids = [o.id for o in outcomes]
    assert len(set(ids)) == N and all(isinstance(o, Job) for o in outcomes)
    for job_id in ids:
        assert job_id in seen[job_id]
    assert sorted(published_ids(platform_env)) == sorted([first.id, *ids])
    if platform_env["SECOPS_DATABASE_URL"].startswith("postgresql"):
        jobs, _ = jobs_and_entries()
        assert len({jobs[i] for i in ids}) < len(ids)  # written together
