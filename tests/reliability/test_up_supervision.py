"""``secops up`` supervises its embedded Redis: after ``kill -9`` it is back on the same
port, password and data and the API serves again; SIGTERM stops everything cleanly even
with Redis frozen (SIGSTOP)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest
import redis

from secops.embedded import free_port
from tests.cli.test_up import _cmdline, processes_with
from tests.factories import auth
from tests.processes import wait_for

pytestmark = pytest.mark.integration


def _redis_pid(url: str) -> int | None:
    """The pid of the Redis answering at ``url`` (its process title hides its environment)."""
    try:
        return int(redis.Redis.from_url(url, socket_timeout=2).info("server")["process_id"])
    except redis.RedisError:
        return None


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return b"redis-server" not in _cmdline(pid)


def test_redis_is_restarted_and_sigterm_is_clean_in_any_redis_state(tmp_path):
    api_port = free_port()
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECOPS_")}
    env.update(SECOPS_DATA_DIR=str(data_dir), SECOPS_API_PORT=str(api_port),
               SECOPS_API_PROCESSES="1", SECOPS_SHUTDOWN_GRACE="5")
    log = open(tmp_path / "up.log", "wb")  # noqa: SIM115
    up = subprocess.Popen([sys.executable, "-m", "secops.cli", "up", "--no-flower",
                           "--concurrency", "1"], cwd=tmp_path, env=env,
                          stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{api_port}"
    try:
        wait_for(lambda: (data_dir / "secrets" / "api_key").exists() or up.poll() is not None,
                 90, "the first admin key")
        key = (data_dir / "secrets" / "api_key").read_text().strip()
        url = (data_dir / "secrets" / "redis_url").read_text().strip()

        def serves() -> bool:
            try:
                return httpx.get(f"{base}/v1/jobs", headers=auth(key), timeout=3).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(serves, 90, "the API")
        first = _redis_pid(url)
        assert first is not None
        redis.Redis.from_url(url).lpush("kept-across-restart", b"1")
        wait_for(lambda: any(b"kept-across-restart" in p.read_bytes()
                             for p in (data_dir / "redis").rglob("*.aof")), 10, "the AOF")

        os.kill(first, signal.SIGKILL)
        wait_for(lambda: _redis_pid(url) not in (None, first), 30, "a new Redis")
        wait_for(serves, 60, "the API to serve again")
        assert (data_dir / "secrets" / "redis_url").read_text().strip() == url  # same port
        assert redis.Redis.from_url(url).lrange("kept-across-restart", 0, -1) == [b"1"]
        assert up.poll() is None

        second = _redis_pid(url)
        assert second is not None
        os.kill(second, signal.SIGSTOP)  # frozen: clients hang on it
        up.send_signal(signal.SIGTERM)
        code = up.wait(120)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        log.close()
    assert code == 0, (tmp_path / "up.log").read_text()[-3000:]
    wait_for(lambda: not processes_with(str(data_dir)), 10, "no orphan process left")
    assert _gone(first) and _gone(second)
