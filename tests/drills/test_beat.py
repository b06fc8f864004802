"""Drill: two beat processes at once, then every beat SIGKILLed and one started again.

A one-second schedule fires once per due time: with two beats each run is recorded once
and makes one job, and after the kill the run that fell due while no beat ran fires once
(not once per missed slot, and not lost). Every job the schedule made runs to the end,
including one a killed beat had recorded but not published.
Real beat and worker processes on PostgreSQL, where two beats' transactions run
concurrently (on SQLite every transaction takes the write lock first, so two beats are
serialised by construction); bounded in time.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select, update

from secops.db.base import utcnow
from secops.db.models import Job, Schedule
from secops.db.session import session_scope
from secops.services import schedules as schedule_service
from tests.processes import start_beat, start_worker, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.postgres]
INTERVAL = 1.0
DOWN = 2.5  # seconds with no beat running: a few due times pass unseen


def _runs(schedule_id: str) -> int:
    with session_scope() as s:
        schedule = s.get(Schedule, schedule_id)
        assert schedule is not None
        return schedule.total_run_count


def _jobs(schedule_id: str) -> list[Job]:
    with session_scope() as s:
        jobs = list(s.scalars(select(Job).where(Job.submitted_by == f"schedule:{schedule_id}")
                              .order_by(Job.created_at)).all())
        s.expunge_all()
        return jobs


@pytest.mark.parametrize("platform_env", ["postgresql"], indirect=True)
def test_two_beats_and_a_killed_beat_fire_each_due_run_once(platform_env, tmp_path):
    with session_scope() as s:
        schedule = schedule_service.create_schedule(
            session=s, name="drill", kind="system.ping", params={"message": "tick"},
            created_by="tests", interval_seconds=int(INTERVAL))
        s.flush()
        # A run recorded and committed, then never published: what a beat killed between
        # its commit and its publish leaves. The next beat to start publishes it.
        orphan = schedule_service.fire_schedule(session=s, schedule=schedule, now=utcnow())
        assert orphan is not None
        s.flush()
        schedule_id, orphan_id = schedule.id, orphan.id
    beats = [start_beat(platform_env, tmp_path / f"beat{i}.log") for i in (1, 2)]
    worker = None
    try:
        worker = start_worker(platform_env, tmp_path / "worker.log", concurrency=2)
        wait_for(lambda: _runs(schedule_id) >= 3, 60, "two beats to fire three runs", 0.05)
        for beat in beats:
            beat.kill()
            beat.p.wait()
        before_kill = _runs(schedule_id)
        killed_at = time.monotonic()
        time.sleep(DOWN)
        assert _runs(schedule_id) == before_kill  # nothing fires with no beat
        beats.append(start_beat(platform_env, tmp_path / "beat3.log"))
        wait_for(lambda: _runs(schedule_id) >= before_kill + 2, 60, "the restarted beat", 0.05)
        with session_scope() as s:
            s.execute(update(Schedule).where(Schedule.id == schedule_id).values(enabled=False))
        beats[-1].stop()
        runs = _runs(schedule_id)
        wait_for(lambda: all(j.status == "succeeded" for j in _jobs(schedule_id)), 60,
                 "every scheduled job to run")
    finally:
        for beat in beats:
            beat.stop()
        if worker is not None:
            worker.stop()
    outage = time.monotonic() - killed_at
    jobs = _jobs(schedule_id)
    assert len(jobs) == runs  # one job per recorded run, none recorded twice
    assert [j.status for j in jobs] == ["succeeded"] * runs
    assert {j.result["echo"]["message"] for j in jobs if j.result} == {"tick"}
    assert jobs[0].id == orphan_id  # and it ran (above)
    fired = jobs[1:]  # by the beats: the orphan was made before any beat started
    gaps = [(b.created_at - a.created_at).total_seconds() for a, b in zip(fired, fired[1:],
                                                                           strict=False)]
    # A due time fired twice (by the two beats, or again after the restart) would show as
    # two jobs a few milliseconds apart; each fire starts the next interval.
    assert min(gaps) > INTERVAL * 0.5, gaps
    # The runs missed while no beat ran are caught up once: one gap spans the outage,
    # every other gap is one interval (plus a beat tick's lateness).
    long_gaps = [g for g in gaps if g > INTERVAL * 1.8]
    assert len(long_gaps) == 1 and DOWN <= long_gaps[0] < outage + INTERVAL, gaps
