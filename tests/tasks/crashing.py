"""A task whose every delivery kills the pool process running it, before any job code
runs: the poison message of the dead-letter test. Only a test worker imports it
(``start_worker(include=("tests.tasks.crashing",))``)."""

from __future__ import annotations

import os
import signal

from tasks.app import app


@app.task(name="tests.crash")
def crash(job_id: str) -> None:
    os.kill(os.getpid(), signal.SIGKILL)
