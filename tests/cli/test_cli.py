"""The ``secops`` command: key management, jobs through a real API process, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from secops.embedded import free_port
from tests.processes import start_api, start_worker

pytestmark = pytest.mark.integration


def run(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "secops.cli", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=timeout)


def test_keys_lifecycle(platform_env):
    created = run(platform_env, "keys", "create", "--name", "ci", "--role", "analyst", "--json")
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    assert set(key) >= {"id", "prefix", "key"} and key["key"].startswith(f"secops_{key['prefix']}_")
    listed = run(platform_env, "keys", "list", "--json")
    rows = json.loads(listed.stdout)
    assert [r["id"] for r in rows] == [key["id"]]
    assert key["key"] not in listed.stdout  # never the secret
    assert run(platform_env, "keys", "revoke", key["prefix"]).returncode == 0
    assert json.loads(run(platform_env, "keys", "list", "--json").stdout) == []
    human = run(platform_env, "keys", "create", "--name", "h")
    assert human.returncode == 0 and "not shown again" in human.stdout


def test_usage_errors_exit_2_with_one_line(sqlite_env):
    platform_env = sqlite_env
    for args in (["keys", "create"], ["keys", "create", "--name", "x", "--role", "root"],
                 ["keys", "create", "--name", "svc", "--role", "service"],
                 ["jobs", "submit", "system.ping", "--params", "{not json"],
                 ["keys", "revoke", "no-such-key"], ["nonsense"]):
        result = run(platform_env, *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr and result.stderr.strip()


def test_connection_error_exits_2(sqlite_env):
    platform_env = sqlite_env
    env = dict(platform_env, SECOPS_API_URL=f"http://127.0.0.1:{free_port()}",
               SECOPS_API_KEY="secops_aaaaaaaa_" + "a" * 43)
    result = run(env, "jobs", "list")
    assert result.returncode == 2
    assert "cannot reach the API" in result.stderr and "Traceback" not in result.stderr


def test_jobs_and_schedules_through_the_api(sqlite_env, tmp_path):
    platform_env = sqlite_env
    key = json.loads(run(platform_env, "keys", "create", "--name", "cli", "--role", "admin",
                         "--json").stdout)["key"]
    api, url = start_api(platform_env, tmp_path / "api.log")
    worker = start_worker(platform_env, tmp_path / "w.log")
    env = dict(platform_env, SECOPS_API_URL=url, SECOPS_API_KEY=key)
    try:
        ok = run(env, "jobs", "submit", "system.ping", "--param", "message=cli", "--wait", "--json")
        assert ok.returncode == 0, ok.stderr
        job = json.loads(ok.stdout)
        assert job["status"] == "succeeded" and job["result"]["echo"]["message"] == "cli"
        failed = run(env, "jobs", "submit", "system.ping", "--param", "fail=true", "--wait")
        assert failed.returncode == 1 and "failed" in failed.stdout
        got = run(env, "jobs", "get", job["id"], "--json")
        assert json.loads(got.stdout)["id"] == job["id"]
        assert run(env, "jobs", "wait", job["id"]).returncode == 0
        listed = run(env, "jobs", "list", "--json")
        assert json.loads(listed.stdout)["total"] == 2
        missing = run(env, "jobs", "get", "does-not-exist")
        assert missing.returncode == 2 and "404" in missing.stderr
        bad_kind = run(env, "jobs", "submit", "no.such")
        assert bad_kind.returncode == 2 and "unknown job kind" in bad_kind.stderr

        made = run(env, "schedules", "create", "--name", "n", "--kind", "system.ping",
                   "--cron", "0 4 * * *", "--json")
        assert made.returncode == 0, made.stderr
        sid = json.loads(made.stdout)["id"]
        assert run(env, "schedules", "update", sid, "--disable").returncode == 0
        shown = json.loads(run(env, "schedules", "get", sid, "--json").stdout)
        assert shown["enabled"] is False
        assert sid in run(env, "schedules", "list").stdout
        assert run(env, "schedules", "create", "--name", "x", "--kind", "system.ping").returncode == 2
        assert run(env, "schedules", "delete", sid).returncode == 0
        assert sid not in {s["id"] for s in json.loads(run(env, "schedules", "list", "--json").stdout)}
        bad_key = run(dict(env, SECOPS_API_KEY=key[:-2] + "zz"), "jobs", "list")
        assert bad_key.returncode == 2 and "authentication failed" in bad_key.stderr
    finally:
        worker.stop()
        api.stop()
