"""Anomaly detection through the platform: API batches and a log file, real workers, one window."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime

import httpx
import pytest

from tests.factories import auth, make_key
from tests.platform.helpers import platform, wait_job, wait_scan
from tests.processes import start_worker

pytestmark = pytest.mark.integration
ATTACKER = "203.0.113.77"


def login_failure(ts: float) -> str:
    return json.dumps({"ts": datetime.fromtimestamp(ts, UTC).isoformat(), "event": "login",
                       "user": "svc-deploy", "ip": ATTACKER, "success": False})


def sudo_failure(ts: float) -> str:
    stamp = datetime.fromtimestamp(ts, UTC).strftime("%b %e %H:%M:%S")
    return (f"{stamp} db1 sudo: pam_unix(sudo:auth): authentication failure; logname=mallory "
            f"uid=1001 euid=0 tty=/dev/pts/3 ruser=mallory rhost=  user=mallory\n")


def test_batches_share_one_window_across_workers_and_files_are_read(sqlite_env, tmp_path, monkeypatch):
    logs = tmp_path / "logs"
    logs.mkdir()
    auth_log = logs / "auth.log"
    now = time.time()
    auth_log.write_text("".join(sudo_failure(now - 60 + i * 5) for i in range(5)))
    os.utime(auth_log, (now, now))
    extra = {"SECOPS_ANOMALY_SOURCES": json.dumps([str(auth_log)]),
             "SECOPS_ANOMALY_OWN_EVENTS": "false", "SECOPS_ANOMALY_INGEST_MAX_LINES": "50"}
    with platform(sqlite_env, tmp_path, monkeypatch, extra) as url:
        second = start_worker({**sqlite_env, **extra}, tmp_path / "w2.log", name="w2",
                              queues="anomaly")
        try:
            shipper = httpx.Client(base_url=url, timeout=30,
                                   headers=auth(make_key("service", kinds=["anomaly.ingest"],
                                                         name="shipper")))
            admin = httpx.Client(base_url=url, headers=auth(make_key(name="admin")), timeout=30)

            # Two shippers each send five failures of one attack: neither half is more than
            # five in five minutes, together they are ten.
            times = [now - 200 + i * 15 for i in range(10)]
            posted = [shipper.post("/v1/anomaly/ingest", json={
                "source": f"vpn-{n}", "lines": [login_failure(t) for t in times[n::2]]})
                for n in range(2)]
            assert [p.status_code for p in posted] == [202, 202], posted[0].text
            assert posted[0].json()["format"] == "jsonl" and posted[0].json()["line_count"] == 5
            done = [wait_scan(shipper, f"/v1/anomaly/batches/{p.json()['id']}") for p in posted]
            assert [d["status"] for d in done] == ["processed", "processed"], done
            assert sum(d["result"]["lines"] for d in done) == 10

            found = admin.get("/v1/alerts", params={"limit": 100}).json()["items"]
            anomaly_alerts = sorted((a["rule"], a["subject"], a["severity"], a["details"]["count"])
                                    for a in found if a["rule"].startswith("anomaly."))
            assert anomaly_alerts == [("anomaly.auth-failures-ip", f"ip:{ATTACKER}", "high", 6),
                                      ("anomaly.auth-failures-user", "user:svc-deploy", "high", 6)]

            # the scheduled kind reads the configured log file
            job = admin.post("/v1/jobs", json={"kind": "anomaly.ingest", "params": {}})
            assert job.status_code == 202, job.text
            finished = wait_job(admin, job.json()["id"])
            assert finished["status"] == "succeeded", finished
            assert finished["result"]["lines"] == 5
            assert [(a["rule"], a["entity"], a["count"]) for a in finished["result"]["alerts_opened"]] \
                == [("sudo-failure-burst", "mallory", 4)]
            again = wait_job(admin, admin.post("/v1/jobs", json={"kind": "anomaly.ingest",
                                                                 "params": {}}).json()["id"])
            assert again["result"]["lines"] == 0

            # bad input: clear problems, nothing stored
            for body in ({"source": "x", "lines": []}, {"source": "x", "lines": ["a"], "format": "csv"},
                         {"source": "x", "lines": ["hello"]}, {"lines": ["a"]},
                         {"source": "x", "lines": [login_failure(now)] * 51}):
                bad = shipper.post("/v1/anomaly/ingest", json=body)
                assert bad.status_code == 422, (body, bad.text)
                assert bad.headers["content-type"].startswith("application/problem+json")
            huge = shipper.post("/v1/anomaly/ingest",
                                json={"source": "x", "lines": ["x" * 4000] * 400})
            assert huge.status_code == 413
            auditor = httpx.Client(base_url=url, headers=auth(make_key("auditor", name="aud")))
            assert auditor.post("/v1/anomaly/ingest",
                                json={"source": "x", "lines": ["a"]}).status_code == 403
        finally:
            second.stop()
