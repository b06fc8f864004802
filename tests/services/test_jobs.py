"""Job state changes on SQLite and PostgreSQL: claims, redelivery, poison, cancel races."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from secops.db.base import utcnow
from secops.db.models import Job
from secops.db.session import session_scope
from secops.errors import Conflict, InvalidInput, NotFound
from secops.kinds import KINDS
from secops.services import jobs as svc


def new_job(**params) -> str:
    with session_scope() as s:
        job = svc.create_job(session=s, kind="system.ping", params=params, submitted_by="t")
        s.flush()
        return job.id


def claim(job_id: str, max_attempts: int = 3) -> svc.Claim:
    with session_scope() as s:
        result, _ = svc.claim_job(session=s, job_id=job_id, time_limit=10, max_attempts=max_attempts,
                                  grace=1)
        return result


def expire_lease(job_id: str) -> None:
    with session_scope() as s:
        s.execute(update(Job).where(Job.id == job_id).values(
            lease_expires_at=utcnow() - timedelta(seconds=1)))


def status(job_id: str) -> tuple[str, int, str | None]:
    with session_scope() as s:
        job = svc.get_job(session=s, job_id=job_id)
        return job.status, job.attempts, job.error


def test_claim_runs_once_and_redelivery_is_held_then_done(platform_env):
    job_id = new_job(message="x")
    with session_scope() as s:
        result, job = svc.claim_job(session=s, job_id=job_id, time_limit=10, max_attempts=3)
    assert result is svc.Claim.run and job is not None and job.params["message"] == "x"
    assert claim(job_id) is svc.Claim.held  # a duplicate while the lease is live
    with session_scope() as s:
        assert svc.complete_job(session=s, job_id=job_id, result={"ok": True})
    assert claim(job_id) is svc.Claim.done  # a redelivery after success does nothing
    assert status(job_id) == ("succeeded", 1, None)
    with session_scope() as s:
        assert not svc.fail_job(session=s, job_id=job_id, error="late")  # finished stays finished
    assert status(job_id)[0] == "succeeded"


def test_worker_death_three_times_is_poison(platform_env):
    job_id = new_job()
    for attempt in range(1, 4):
        assert claim(job_id) is svc.Claim.run
        assert status(job_id)[1] == attempt
        expire_lease(job_id)  # the worker died: nobody finished it
    assert claim(job_id) is svc.Claim.poison
    state, attempts, error = status(job_id)
    assert state == "failed" and attempts == 3 and "poison" in (error or "")


def test_cancel_races(platform_env):
    queued, running = new_job(), new_job()
    assert claim(running) is svc.Claim.run
    with session_scope() as s:
        assert svc.cancel_job(session=s, job_id=queued).status == "cancelled"
        assert svc.cancel_job(session=s, job_id=running).status == "cancelled"
    assert claim(queued) is svc.Claim.done  # a cancelled job never starts
    with session_scope() as s:
        assert not svc.complete_job(session=s, job_id=running, result={})  # nor records success
        with pytest.raises(Conflict):
            svc.cancel_job(session=s, job_id=running)
        with pytest.raises(NotFound):
            svc.cancel_job(session=s, job_id="nope")
    assert status(running)[0] == "cancelled"


def test_missing_job_and_bad_input(platform_env):
    assert claim("00000000-0000-0000-0000-000000000000") is svc.Claim.missing
    with session_scope() as s:
        with pytest.raises(InvalidInput, match="unknown job kind"):
            svc.create_job(session=s, kind="nope.nope", params={}, submitted_by="t")
        with pytest.raises(InvalidInput) as err:
            svc.create_job(session=s, kind="system.ping", params={"sleep": 10_000},
                           submitted_by="t")
        assert err.value.details["errors"][0]["field"] == "sleep"
        with pytest.raises(InvalidInput):
            svc.list_jobs(session=s, status="bogus")


def test_stuck_jobs_are_found_by_lease(platform_env):
    live, dead = new_job(), new_job()
    claim(live)
    claim(dead)
    expire_lease(dead)
    with session_scope() as s:
        stuck = [j.id for j in svc.find_stuck_jobs(session=s)]
        assert stuck == [dead]
        job = svc.get_job(session=s, job_id=dead)
        assert svc.requeue_or_fail_stuck(session=s, job=job, max_attempts=3).value == "queued"
    assert status(dead)[0] == "queued"


def _row(job_id: str) -> dict:
    with session_scope() as s:
        job = svc.get_job(session=s, job_id=job_id)
        return {c: getattr(job, c) for c in Job.__table__.columns.keys()}


SAME = ("kind", "status", "params", "result", "error", "attempts", "submitted_by",
        "idempotency_key", "started_at", "finished_at", "lease_expires_at")


@pytest.mark.parametrize("items", [
    [("system.ping", None)],
    [("system.ping", {})],
    [("system.ping", {"message": "ünïcode ✓", "sleep": 0})],
    [("system.ping", {"message": "a"}), ("system.ping", {"message": "b"}),
     ("system.ping", {"fail": True})],
])
def test_insert_jobs_writes_what_create_job_writes(platform_env, items):
    """The submits' one-statement insert gives the rows (and the returned jobs) that
    create_job and a flush give: every column but the new id and the times."""
    with session_scope() as s:
        general = [svc.create_job(session=s, kind=k, params=p, submitted_by="key:1",
                                  idempotency_key="idem") for k, p in items]
        s.flush()
        general_ids = [j.id for j in general]
    with session_scope() as s:
        fast = svc.insert_jobs(session=s, items=items, submitted_by="key:1",
                               idempotency_key="idem")
    assert len(fast) == len(items)
    for general_id, job in zip(general_ids, fast, strict=True):
        expected, written = _row(general_id), _row(job.id)
        assert {c: written[c] for c in SAME} == {c: expected[c] for c in SAME}
        assert {c: getattr(job, c) for c in written} == written  # returned as stored
        assert written["created_at"] == written["updated_at"]
        assert written["created_at"].tzinfo is not None


def test_insert_jobs_refuses_what_create_job_refuses(platform_env):
    with session_scope() as s:
        for bad in ([("no.such.kind", {})], [("system.ping", {"sleep": "soon"})]):
            with pytest.raises(InvalidInput):
                svc.create_job(session=s, kind=bad[0][0], params=bad[0][1], submitted_by="t")
            with pytest.raises(InvalidInput):
                svc.insert_jobs(session=s, items=bad, submitted_by="t")
        assert svc.insert_jobs(session=s, items=[], submitted_by="t") == []
    single = next(name for name, spec in KINDS.items() if spec.single)
    with session_scope() as s:  # two of a single kind in one batch: the second conflicts
        with pytest.raises(Conflict):
            svc.insert_jobs(session=s, items=[(single, {}), (single, {})], submitted_by="t")
    with session_scope() as s:
        svc.insert_jobs(session=s, items=[(single, {})], submitted_by="t")
    with session_scope() as s:  # and one already queued conflicts, as with create_job
        with pytest.raises(Conflict):
            svc.create_job(session=s, kind=single, params={}, submitted_by="t")
        with pytest.raises(Conflict):
            svc.insert_jobs(session=s, items=[(single, {})], submitted_by="t")


def test_claim_queued_claims_as_claim_job_does(platform_env):
    """The worker's one-statement claim takes a queued job exactly as claim_job does
    (same row, same returned job) and leaves every other case to claim_job."""
    from secops.db.session import get_engine

    def fast(job_id: str, max_attempts: int = 3) -> Job | None:
        with get_engine().connect() as connection:
            job = svc.claim_queued(connection=connection, job_id=job_id, time_limit=10,
                                   max_attempts=max_attempts, grace=1)
            if connection.dialect.name == "postgresql":  # the next transaction waits again
                assert connection.exec_driver_sql(
                    "SHOW synchronous_commit").scalar_one() == "on"
            return job

    general_id, fast_id = new_job(message="x", sleep=0), new_job(message="x", sleep=0)
    with session_scope() as s:
        _, general = svc.claim_job(session=s, job_id=general_id, time_limit=10,
                                   max_attempts=3, grace=1)
    job = fast(fast_id)
    assert job is not None and general is not None
    skip = {"id", "started_at", "updated_at", "lease_expires_at", "created_at"}
    assert {c: getattr(job, c) for c in SAME if c not in skip} == \
        {c: getattr(general, c) for c in SAME if c not in skip}
    assert {c: v for c, v in _row(fast_id).items() if c not in skip} == \
        {c: v for c, v in _row(general_id).items() if c not in skip}
    row = _row(fast_id)
    assert (row["started_at"], row["lease_expires_at"]) == (job.started_at, job.lease_expires_at)
    assert row["lease_expires_at"] - row["started_at"] == timedelta(seconds=11)
    assert fast(fast_id) is None  # running, lease live: claim_job says held
    assert claim(fast_id) is svc.Claim.held
    assert fast("no-such-job") is None
    spent = new_job()
    with session_scope() as s:
        s.execute(update(Job).where(Job.id == spent).values(attempts=3))
    assert fast(spent, max_attempts=3) is None  # no attempts left: claim_job fails it
    assert claim(spent) is svc.Claim.poison
