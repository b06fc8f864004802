"""Every state-changing call is audited; auditors export; alerts are listed, acknowledged
and delivered (signed webhook with retries, by a real worker); the audit.verify job."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from sqlalchemy import select, text

from secops.db.models import AuditEntry, Job
from secops.db.session import session_scope
from tests.factories import auth, make_key
from tests.processes import start_worker, wait_for
from tests.security.conftest import assert_problem


def entries() -> list[AuditEntry]:
    with session_scope() as s:
        return list(s.scalars(select(AuditEntry).order_by(AuditEntry.seq)))


def test_every_state_change_writes_one_entry_and_failures_none(client):
    admin = make_key()
    job = client.post("/v1/jobs", json={"kind": "system.ping"}, headers=auth(admin)).json()
    client.post("/v1/jobs/batch", json={"jobs": [{"kind": "system.ping"}] * 3},
                headers=auth(admin))
    client.post(f"/v1/jobs/{job['id']}/cancel", headers=auth(admin))
    sched = client.post("/v1/schedules", json={"name": "s", "kind": "system.ping",
                                               "interval_seconds": 60}, headers=auth(admin)).json()
    client.patch(f"/v1/schedules/{sched['id']}", json={"enabled": False}, headers=auth(admin))
    client.delete(f"/v1/schedules/{sched['id']}", headers=auth(admin))
    # refused or invalid requests change nothing and write nothing
    client.post(f"/v1/jobs/{job['id']}/cancel", headers=auth(admin))  # 409 already cancelled
    client.post("/v1/schedules", json={"name": "s2", "kind": "no.such", "interval_seconds": 60},
                headers=auth(admin))
    client.delete("/v1/schedules/nope", headers=auth(admin))
    client.post("/v1/jobs", json={"kind": "system.ping"},
                headers=auth(make_key(role="auditor", name="aud")))
    got = [(e.action, e.target.split(":")[0]) for e in entries()]
    assert got == [("jobs.submit", "job"), ("jobs.submit", "jobs"), ("jobs.cancel", "job"),
                   ("schedules.create", "schedule"), ("schedules.update", "schedule"),
                   ("schedules.delete", "schedule")]
    first = entries()[0]
    assert first.actor.startswith("key:") and first.client_ip == "testclient"
    assert first.details["job_ids"] == [job["id"]]


def test_auditor_reads_and_exports_the_log(client):
    admin, auditor, analyst = make_key(), make_key(role="auditor", name="a"), make_key(
        role="analyst", name="b")
    for i in range(3):
        client.post("/v1/jobs", json={"kind": "system.ping", "params": {"message": str(i)}},
                    headers=auth(admin))
    listed = client.get("/v1/audit", headers=auth(auditor)).json()
    assert listed["total"] == 3 and [e["seq"] for e in listed["items"]] == [3, 2, 1]
    jsonl = client.get("/v1/audit/export?format=jsonl", headers=auth(auditor))
    assert jsonl.status_code == 200 and jsonl.headers["content-type"] == "application/x-ndjson"
    rows = [json.loads(line) for line in jsonl.text.splitlines()]
    assert [r["seq"] for r in rows] == [1, 2, 3] and rows[1]["prev_hash"] == rows[0]["hash"]
    exported = client.get("/v1/audit/export?format=csv", headers=auth(auditor))
    assert exported.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["action"] for r in table] == ["jobs.submit"] * 3
    assert_problem(client.get("/v1/audit/export?format=xml", headers=auth(auditor)), 422)
    assert_problem(client.get("/v1/audit/export", headers=auth(analyst)), 403)
    assert_problem(client.get("/v1/audit", headers=auth(analyst)), 403)


def test_alerts_list_and_acknowledge(client):
    analyst = make_key(role="analyst")
    for _ in range(6):
        client.get("/v1/jobs", headers=auth("secops_qqqqqqqq_" + "x" * 43))
    listed = client.get("/v1/alerts?status=open", headers=auth(analyst)).json()
    assert {a["rule"] for a in listed["items"]} == {"auth.failures.ip", "auth.failures.key"}
    alert_id = listed["items"][0]["id"]
    acked = client.post(f"/v1/alerts/{alert_id}/acknowledge", headers=auth(analyst)).json()
    assert acked["status"] == "acknowledged" and acked["acknowledged_by"].startswith("key:")
    again = client.post(f"/v1/alerts/{alert_id}/acknowledge", headers=auth(analyst))
    assert again.status_code == 200  # idempotent, audited once
    assert [e.action for e in entries()] == ["alerts.acknowledge"]
    assert_problem(client.get("/v1/alerts?severity=nope", headers=auth(analyst)), 422)
    assert_problem(client.post("/v1/alerts/missing/acknowledge", headers=auth(analyst)), 404)
    events = client.get("/v1/security/events?kind=auth.failure",
                        headers=auth(make_key(role="auditor", name="aud"))).json()
    assert len(events) == 6 and events[0]["details"]["ip"] == "testclient"


def test_metrics(client):
    scraper = make_key(role="service", kinds=["system.ping"], name="prom")
    client.post("/v1/jobs", json={"kind": "system.ping"}, headers=auth(scraper))
    client.get("/v1/jobs", headers=auth("secops_qqqqqqqq_" + "x" * 43))
    resp = client.get("/metrics", headers=auth(scraper))
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    body = resp.text
    for line in ('secops_jobs{kind="system.ping",status="queued"} 1.0',
                 'secops_queue_depth{queue="default"} 1.0', "secops_auth_failures_total 1.0",
                 'secops_rate_limited_requests_total{class="read"} 0.0', "secops_redis_up 1.0",
                 "# TYPE secops_job_duration_seconds histogram", "# TYPE secops_alerts gauge"):
        assert line in body, line
    assert_problem(client.get("/metrics", headers=auth(make_key(role="analyst", name="a"))), 403)
    assert_problem(client.get("/metrics"), 401)


class _Hook(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []
    fail_first = 1

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        status = 503 if len(type(self).received) <= type(self).fail_first else 204
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.mark.integration
def test_webhook_delivery_with_retry_and_audit_verify_job(sqlite_env, monkeypatch, tmp_path):
    from fastapi.testclient import TestClient

    from secops.api.app import create_app
    from secops.config import get_settings

    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    secret = "whsec-test-" + "k" * 20  # pragma: allowlist secret
    env = dict(sqlite_env, SECOPS_ALERT_WEBHOOK_URL=f"http://127.0.0.1:{server.server_port}/hook",
               SECOPS_ALERT_WEBHOOK_SECRET=secret)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    client = TestClient(create_app(), raise_server_exceptions=False)
    admin = make_key()
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        for _ in range(6):
            client.get("/v1/jobs", headers=auth("secops_wwwwwwww_" + "x" * 43))
        # two alerts (IP and key rules); the first webhook call answers 503 and is retried
        wait_for(lambda: len(_Hook.received) >= 3, 60, "webhook deliveries")
        for headers, body in _Hook.received:
            stamp, mac = headers["X-SecOps-Signature"].split(",")
            t = stamp.removeprefix("t=")
            expected = hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256)
            assert mac == "v1=" + expected.hexdigest()
        rules = {json.loads(b)["rule"] for _, b in _Hook.received}
        assert rules == {"auth.failures.ip", "auth.failures.key"}
        with session_scope() as s:
            jobs = s.scalars(select(Job).where(Job.kind == "alerts.deliver")).all()
        wait_for(lambda: all(_status(j.id) == "succeeded" for j in jobs), 30, "deliveries")
        # the audit.verify job: fine, then after tampering, a critical alert
        client.post("/v1/jobs", json={"kind": "system.ping"}, headers=auth(admin))
        ok = client.post("/v1/jobs", json={"kind": "audit.verify"}, headers=auth(admin)).json()
        wait_for(lambda: _status(ok["id"]) == "succeeded", 30, "audit.verify")
        with session_scope() as s:
            assert s.get(Job, ok["id"]).result["ok"] is True
            s.execute(text("UPDATE audit_log SET actor = 'key:nobody' WHERE seq = 1"))
        bad = client.post("/v1/jobs", json={"kind": "audit.verify"}, headers=auth(admin)).json()
        wait_for(lambda: _status(bad["id"]) == "succeeded", 30, "audit.verify")
        with session_scope() as s:
            result = s.get(Job, bad["id"]).result
        assert result["ok"] is False and result["first_broken"]["seq"] == 1
        critical = client.get("/v1/alerts?severity=critical", headers=auth(admin)).json()
        assert [a["rule"] for a in critical["items"]] == ["audit.chain_broken"]
    finally:
        worker.stop()
        server.shutdown()


def _status(job_id: str) -> str:
    with session_scope() as s:
        return s.get(Job, job_id).status


def test_daily_verification_schedule_exists_after_migration(sqlite_env):
    from secops.db.models import Schedule
    from secops.services.schedules import next_run

    with session_scope() as s:
        schedule = s.scalar(select(Schedule).where(Schedule.name == "audit-verify-daily"))
        assert schedule is not None and schedule.kind == "audit.verify"
        assert schedule.enabled and schedule.cron == "17 3 * * *"
        assert next_run(schedule).hour == 3


def test_retention_task_archives_nothing_new_and_refuses_a_broken_chain(client):
    from secops.db.models import Alert
    from tasks.audit import archive

    admin = make_key()
    client.post("/v1/jobs", json={"kind": "system.ping"}, headers=auth(admin))
    assert archive.run() == {"archived": 0}  # nothing older than the retention period
    with session_scope() as s:
        s.execute(text("UPDATE audit_log SET target = 'job:x' WHERE seq = 1"))
    assert archive.run()["archived"] == 0
    with session_scope() as s:
        assert [a.rule for a in s.scalars(select(Alert))] == ["audit.chain_broken"]
    assert len(entries()) == 1
