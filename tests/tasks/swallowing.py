"""A job task whose handler catches Exception around slow work, as the parsers of
untrusted files do: the soft time limit must still stop it. Only a test worker imports
it (``start_worker(include=("tests.tasks.swallowing",))``)."""

from __future__ import annotations

import time
from typing import Any

from celery import Task

from tasks.app import app
from tasks.base import run_job


def _swallowing_handler(_session: Any, _job: Any) -> dict[str, Any]:
    try:
        time.sleep(20)
    except Exception:  # noqa: BLE001 - what a lenient parser does
        return {"swallowed": True}
    return {"slept": True}


@app.task(name="tests.swallow", bind=True, soft_time_limit=1, time_limit=15)
def swallow(self: Task, job_id: str) -> dict[str, Any] | None:
    return run_job(self, job_id, _swallowing_handler)
