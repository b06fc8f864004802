"""What the job drills share: a batch of ``system.ping`` jobs submitted and under way, the
jobs' states, and the worker's own count of handlers run to the end."""

from __future__ import annotations

import re
from collections import Counter

import httpx
from sqlalchemy import func, select

from secops.db.models import Job
from secops.db.session import session_scope
from tests.processes import wait_for


def counts() -> dict[str, int]:
    """Jobs by status."""
    with session_scope() as s:
        return {status: n for status, n in
                s.execute(select(Job.status, func.count()).group_by(Job.status))}


def pings_under_way(client: httpx.Client, n: int, sleep: float) -> None:
    """Submit ``n`` pings (messages "0" to "n-1") in one batch and wait until the first
    four are done: the rest are then running or queued."""
    jobs = [{"kind": "system.ping", "params": {"message": str(i), "sleep": sleep}}
            for i in range(n)]
    resp = client.post("/v1/jobs/batch", json={"jobs": jobs})
    assert resp.status_code == 202, resp.text
    wait_for(lambda: counts().get("succeeded", 0) >= 4, 60, "the first jobs to finish")


def completions(log: str) -> Counter[str]:
    """Job ids of the worker's completion lines: a handler that ran to the end, whether its
    result was recorded ("job succeeded") or the job had been finished by someone else."""
    seen: Counter[str] = Counter()
    for line in log.splitlines():
        if "job succeeded" in line or "job finished after cancel" in line:
            match = re.search(r'"job_id": "([0-9a-f-]{36})"', line)
            assert match, line
            seen[match.group(1)] += 1
    return seen


def assert_every_ping_succeeded_once(n: int, worker_log: str) -> None:
    """The ``n`` pings of :func:`pings_under_way` all succeeded, none lost, none added, and
    the worker ran each handler to the end exactly once."""
    with session_scope() as s:
        rows = s.execute(select(Job.id, Job.status, Job.result)).all()
    assert sorted(r.result["echo"]["message"] for r in rows) == sorted(str(i) for i in range(n))
    assert {r.status for r in rows} == {"succeeded"}
    ran = completions(worker_log)
    assert sorted(ran) == sorted(r.id for r in rows)
    assert set(ran.values()) == {1}, ran.most_common(3)


def some_still_queued() -> None:
    """With the broker down: some pings still wait in it (the drill kills it mid-run)."""
    assert counts().get("queued", 0) > 0


def wait_until_all_succeeded(n: int, timeout: float) -> None:
    """Every one of the ``n`` pings finishes once the broker is back."""
    wait_for(lambda: counts().get("succeeded", 0) == n, timeout,
             "every job to finish after the broker came back", interval=0.5)
