"""The compliance matrix: its data file, the live checks, the job, the CLI report, the page."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from click.testing import CliRunner
from sqlalchemy import select

from secops.cli import cli
from secops.compliance import FRAMEWORKS, controls, to_markdown
from secops.db.base import utcnow
from secops.db.cert_models import CertSeen, CertTarget
from secops.db.models import ApiKey, Job, PrivacyRequest
from secops.db.session import session_scope
from secops.services import compliance, mfa
from secops.services import users as user_service
from tests.console.conftest import browser, enrol, get_csrf
from tests.factories import make_key


def test_matrix_maps_every_control_to_each_framework_and_a_known_check():
    rows = controls()
    assert len(rows) == 15 and len({c.id for c in rows}) == 15
    for control in rows:
        assert control.check in compliance.CHECKS, control
        assert all(control.refs[fw] for fw in FRAMEWORKS), control
    refs = {r for c in rows for r in c.refs["iso27001"]}
    assert {"A.8.5", "A.8.15", "A.8.24"} <= refs
    assert all(r.startswith("A.") for r in refs)
    assert all(r.startswith("Art. ") for c in rows for r in c.refs["gdpr"])


def test_live_checks_follow_the_state(sqlite_env):
    make_key(role="admin", name="fresh")
    with session_scope() as session:
        old = session.scalar(select(ApiKey))
        old.created_at = utcnow() - timedelta(days=200)
        admin = user_service.create_user(session=session, name="boss", role="admin",
                                         created_by="t").user
        user_service.create_user(session=session, name="boss2", role="admin", created_by="t")
    with session_scope() as session:
        report = compliance.evaluate(session=session, kv=None, api_url="http://127.0.0.1:9")
    by_check = {r["check"]: r for r in report["controls"]}
    assert by_check["admin_mfa"]["status"] == "fail"
    assert by_check["admin_mfa"]["evidence"] == "MFA enrolled for 0 of 2 admins"
    assert by_check["key_rotation"]["status"] == "fail"
    assert by_check["key_rotation"]["data"]["older_than_policy"] == [old.prefix]
    assert by_check["audit_chain"]["status"] == "pass"
    assert by_check["rate_limiting"]["status"] == "fail"  # no Redis given
    assert by_check["security_headers"]["status"] == "error"  # nothing listens on port 9
    assert by_check["security_txt"]["status"] == "fail"
    assert by_check["certificates"]["status"] == "warn"  # nothing inventoried yet
    assert by_check["dsr_deadlines"]["status"] == "pass"  # no open request
    assert by_check["password_policy"]["status"] == "pass"
    with session_scope() as session:
        user = session.get(type(admin), admin.id)
        mfa.begin_totp(session=session, user=user)
        user.totp_confirmed = True
    with session_scope() as session:
        report = compliance.evaluate(session=session, kv=None, api_url="http://127.0.0.1:9")
    by_check = {r["check"]: r for r in report["controls"]}
    assert by_check["admin_mfa"]["evidence"] == "MFA enrolled for 1 of 2 admins"
    counted = sum(report["overall"].values())
    assert counted == 15
    assert report["summary"]["gdpr"]["fail"] >= 3
    markdown = to_markdown(report)
    assert markdown.count("\n| SO-") == 15 and "| GDPR |" in markdown


def _certificate(session, key, days_left):
    target = CertTarget(kind="endpoint", key=key, host=key, port=443, created_by="t")
    session.add(target)
    session.flush()
    now = utcnow()
    session.add(CertSeen(target_id=target.id, fingerprint=key.ljust(64, "0")[:64],
                         spki_sha256="A" * 44, subject=f"CN={key}", issuer="CN=ca", serial="01",
                         not_before=now - timedelta(days=60),
                         not_after=now + timedelta(days=days_left), key_type="EC",
                         key_bits=256, signature_algorithm="ecdsa-with-SHA256",
                         days_left=days_left, change="new", current=True))


def _request(session, due_in_days):
    session.add(PrivacyRequest(type="access", status="verified", identity_hash="h" * 64,
                               submitted_by="t", due_at=utcnow() + timedelta(days=due_in_days)))


def test_certificate_and_deadline_checks_read_the_families_state(sqlite_env):
    with session_scope() as session:
        _certificate(session, "fine.example", 80)
        _request(session, 20)
    with session_scope() as session:
        checks = {c["check"]: c for c in compliance.evaluate(
            session=session, kv=None, api_url="http://127.0.0.1:9")["controls"]}
    assert checks["certificates"]["status"] == "pass"
    assert checks["certificates"]["evidence"] == (
        "1 inventoried certificates, none expiring within 14 days")
    assert checks["dsr_deadlines"]["status"] == "pass"

    with session_scope() as session:
        _certificate(session, "soon.example", 5)
        _request(session, 3)
    with session_scope() as session:
        checks = {c["check"]: c for c in compliance.evaluate(
            session=session, kv=None, api_url="http://127.0.0.1:9")["controls"]}
    assert checks["certificates"]["status"] == "warn"
    assert checks["certificates"]["data"]["expiring_14_days"] == ["soon.example"]
    assert checks["dsr_deadlines"]["status"] == "warn"
    assert len(checks["dsr_deadlines"]["data"]["due_soon"]) == 1

    with session_scope() as session:
        _certificate(session, "gone.example", -1)
        _request(session, -2)
    with session_scope() as session:
        checks = {c["check"]: c for c in compliance.evaluate(
            session=session, kv=None, api_url="http://127.0.0.1:9")["controls"]}
    assert checks["certificates"]["status"] == "fail"
    assert checks["certificates"]["data"]["expired"] == ["gone.example"]
    assert checks["dsr_deadlines"]["status"] == "fail"
    assert checks["dsr_deadlines"]["evidence"] == (
        "1 of 3 open data subject requests are past their due date")


def test_cli_report_markdown_and_json(sqlite_env, tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["compliance", "report", "--format", "json", "--api-url",
                                 "http://127.0.0.1:9"])
    assert result.exit_code == 1  # some controls fail on a bare installation
    report = json.loads(result.output)
    assert [r["id"] for r in report["controls"]] == [f"SO-{i:02d}" for i in range(1, 16)]
    out = tmp_path / "report.md"
    result = runner.invoke(cli, ["compliance", "report", "--output", str(out), "--api-url",
                                 "http://127.0.0.1:9"])
    assert result.exit_code == 1 and result.output == ""
    assert out.read_text().startswith("# SecOps compliance report")
    result = runner.invoke(cli, ["compliance", "report", "--format", "yaml"])
    assert result.exit_code == 2


def test_console_page_shows_the_last_evaluation(app):
    client = browser(app)
    enrol(client, "aud", "auditor")
    resp = client.get("/console/compliance")
    assert resp.status_code == 200 and 'id="no-report"' in resp.text
    assert 'id="evaluate"' not in resp.text  # an auditor cannot submit jobs
    with session_scope() as session:
        report = compliance.evaluate(session=session, kv=None, api_url="http://127.0.0.1:9")
        session.add(Job(kind="compliance.evaluate", params={}, status="succeeded", attempts=1,
                        submitted_by="schedule:x", result=report, finished_at=utcnow()))
    resp = client.get("/console/compliance")
    assert resp.text.count("<tr><td>SO-") == 15 and "MFA enrolled for 0 of 0" not in resp.text
    analyst = browser(app)
    enrol(analyst, "ana", "analyst")
    assert analyst.get("/console/compliance").status_code == 403
    resp = analyst.post("/console/compliance/evaluate",
                        data={"csrf": get_csrf(analyst, "/console/")})
    assert resp.status_code == 303 and resp.headers["location"].startswith("/console/jobs/")
    with session_scope() as session:
        job = session.scalar(select(Job).where(Job.submitted_by.like("user:%")))
        assert job.kind == "compliance.evaluate" and job.status == "queued"


def test_compliance_job_runs_on_a_real_worker(sqlite_env, tmp_path):
    from secops.services import jobs as job_service
    from tasks.dispatch import enqueue_or_fail
    from tests.processes import start_worker, wait_for

    worker = start_worker(sqlite_env, tmp_path / "worker.log", queues="audit")
    try:
        with session_scope() as session:
            job = job_service.create_job(session=session, kind="compliance.evaluate", params={},
                                         submitted_by="tests")
            session.flush()
            job_id = job.id
        enqueue_or_fail([(job_id, "compliance.evaluate")])

        def finished():
            with session_scope() as session:
                row = session.get(Job, job_id)
                return row if row.status in ("succeeded", "failed") else None

        row = wait_for(finished, 60, "the compliance job")
        assert row.status == "succeeded", row.error
        by_check = {r["check"]: r for r in row.result["controls"]}
        assert by_check["rate_limiting"]["status"] == "pass"  # the worker reaches Redis
        assert by_check["audit_chain"]["status"] == "pass"
        assert len(by_check) == 15
    finally:
        worker.stop()


def test_overview_lists_expiring_certificates_and_overdue_requests(app):
    with session_scope() as session:
        _certificate(session, "fine.example", 80)
        _certificate(session, "soon.example", 5)
        _request(session, -1)
        _request(session, 2)
        _request(session, 25)
    analyst = browser(app)
    enrol(analyst, "ana", "analyst")
    page = analyst.get("/console/")
    assert page.status_code == 200
    section = page.text.split('id="expiring-certificates"')[1].split("</section>")[0]
    assert "soon.example" in section and "fine.example" not in section
    assert "5.0 days" in section
    section = page.text.split('id="dsr-deadlines"')[1].split("</section>")[0]
    assert re.search(r"Overdue: <strong[^>]*>1</strong>; due soon: <strong>1</strong>", section)
