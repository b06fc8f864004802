"""``secops up`` from an empty directory: everything starts, works, and stops with no orphan."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from secops.embedded import free_port
from tests.processes import wait_for

pytestmark = pytest.mark.integration


def processes_with(marker: str) -> list[int]:
    """Pids whose environment names our data dir: every process `secops up` started."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_up_runs_the_platform_and_stops_cleanly(tmp_path):
    api_port, flower_port = free_port(), free_port()
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECOPS_")}
    env.update(SECOPS_DATA_DIR=str(data_dir), SECOPS_API_PORT=str(api_port),
               SECOPS_FLOWER_PORT=str(flower_port))
    log = open(tmp_path / "up.log", "wb")  # noqa: SIM115
    up = subprocess.Popen([sys.executable, "-m", "secops.cli", "up"], cwd=tmp_path, env=env,
                          stdout=subprocess.PIPE, stderr=log)
    base = f"http://127.0.0.1:{api_port}"
    try:
        def ready() -> bool:
            try:
                return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return up.poll() is not None
        wait_for(ready, 90, "readyz", interval=1.0)  # /readyz is rate limited per address
        assert up.poll() is None, (tmp_path / "up.log").read_text()[-3000:]
        assert up.stdout is not None
        printed = up.stdout.read1().decode()  # type: ignore[attr-defined]
        key_file = data_dir / "secrets" / "api_key"
        key = key_file.read_text().strip()
        assert key in printed  # shown once on the first run
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert stat.S_IMODE((data_dir / "secrets").stat().st_mode) == 0o700
        assert (data_dir / "secops.db").exists()

        cli_env = dict(env, SECOPS_API_URL=base)
        flower = f"http://127.0.0.1:{flower_port}"
        wait_for(lambda: _get(flower) is not None, 30, "flower")
        assert _get(flower) == 401
        password = (data_dir / "secrets" / "flower_password").read_text().strip()

        def flower_saw(job_id: str) -> bool:
            r = httpx.get(f"{flower}/api/tasks", auth=("admin", password), timeout=5)
            return r.status_code == 200 and job_id in r.json()

        # Flower switches the workers' task events on within a few seconds of starting;
        # from then on it shows every job under the same id as the API.
        for _ in range(10):
            done = subprocess.run([sys.executable, "-m", "secops.cli", "jobs", "submit",
                                   "system.ping", "--param", "message=up", "--wait", "--json"],
                                  env=cli_env, capture_output=True, timeout=60, cwd=tmp_path)
            assert done.returncode == 0, done.stderr
            job = json.loads(done.stdout)
            assert job["status"] == "succeeded" and job["result"]["echo"]["message"] == "up"
            try:
                wait_for(lambda j=job: flower_saw(j["id"]), 5, "the job in Flower")
                break
            except AssertionError:
                continue
        else:
            raise AssertionError("Flower never showed a job")
        children = processes_with(str(data_dir))
        assert len(children) >= 6  # api, worker + pool, beat, flower, redis
        api_processes = [pid for pid in children if b"spawn_main" in _cmdline(pid)]
        assert len(api_processes) == 2  # SECOPS_API_PROCESSES: uvicorn serves on two
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            code = up.wait(60)
        finally:
            log.close()
    assert code == 0
    wait_for(lambda: not processes_with(str(data_dir)), 10, "no orphan process left")
    import sqlite3

    with sqlite3.connect(data_dir / "secops.db") as db:
        audited = db.execute("SELECT actor, action, target FROM audit_log "
                             "WHERE action = 'keys.create'").fetchall()
    assert len(audited) == 1 and audited[0][0] == "secops up"  # the first admin key is audited

    # a second run reuses the data dir and does not print a new key
    up2 = subprocess.Popen([sys.executable, "-m", "secops.cli", "up", "--no-flower"], cwd=tmp_path,
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _get(f"{base}/healthz") == 200, 60, "second start")
    finally:
        up2.send_signal(signal.SIGINT)
        out, _ = up2.communicate(timeout=60)
    assert b"secops_" not in out
    wait_for(lambda: not processes_with(str(data_dir)), 10, "no orphan process left")


def _get(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return None
