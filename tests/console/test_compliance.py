"""The compliance matrix: its data file, the live checks, the job, the CLI report, the page."""

from __future__ import annotations

import json
from datetime import timedelta

from click.testing import CliRunner
from sqlalchemy import select

from secops.cli import cli
from secops.compliance import FRAMEWORKS, controls, to_markdown
from secops.db.base import utcnow
from secops.db.models import ApiKey, Job
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
    assert by_check["certificates"]["status"] == "not_applicable"
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
