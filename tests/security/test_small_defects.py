"""The smaller defects of the review, each reproduced: naive timestamps, webhook URLs in
logs, links in directory scans, a DLP re-upload after an admin's delete, the staging
key in a repr, the platform's own tasks behind user jobs, and unbounded sleeps."""

from __future__ import annotations

import io
import logging
import os
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
from fastapi.testclient import TestClient

from secops.api.app import create_app
from secops.config import get_settings
from secops.db.models import StoredFile
from secops.db.session import session_scope
from secops.kinds import KINDS, LIGHT_QUEUES
from secops.logs import configure_logging
from secops.services import directory_scans, quarantine, scans
from secops.services.storage import get_store
from tasks.routing import KEY_USE_TASK, REAP_TASK, celery_config
from tests.factories import auth, make_key
from tests.scanning.corpus import EICAR
from tests.security.conftest import assert_problem
from tests.services.test_scan_jobs import CTX, _run_job, _submit


def test_naive_timestamps_are_a_clear_problem(sqlite_env):
    client = TestClient(create_app(), raise_server_exceptions=False)
    admin = make_key()
    for url in ("/v1/jobs?since=2026-01-01T00:00:00", "/v1/audit?since=2026-01-01T00:00:00",
                "/v1/audit?until=2026-01-01T00:00:00"):
        body = assert_problem(client.get(url, headers=auth(admin)), 422)
        assert body["errors"][0]["field"] in ("query.since", "query.until")
        assert "timezone" in body["errors"][0]["message"]
    for url in ("/v1/jobs?since=2026-01-01T00:00:00Z", "/v1/audit?since=2026-01-01T00:00:00%2B02:00"):
        assert client.get(url, headers=auth(admin)).status_code == 200


class _Hook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_webhook_urls_stay_out_of_the_logs():
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    out = io.StringIO()
    try:
        configure_logging("DEBUG", stream=out)
        token = "T0ken" + "9" * 30
        url = f"http://127.0.0.1:{server.server_port}/hooks/{token}"
        assert httpx.post(url, content=b"{}").status_code == 204
        logging.getLogger("secops.tests").info("delivered")
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
        server.shutdown()
        server.server_close()
    assert '"msg": "delivered"' in out.getvalue() or "delivered" in out.getvalue()
    assert token not in out.getvalue() and "/hooks/" not in out.getvalue()


def test_directory_scans_do_not_follow_links_swapped_in_after_the_walk(sqlite_env, tmp_path):
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    (allowed / "sub").mkdir(parents=True)
    (outside / "sub").mkdir(parents=True)
    (allowed / "a.txt").write_text("harmless")
    (allowed / "sub" / "b.txt").write_text("harmless too")
    (outside / "secret.txt").write_bytes(EICAR)
    (outside / "sub" / "b.txt").write_bytes(EICAR)
    scanner = scans.get_scanner(get_settings())
    with session_scope() as session:
        plan = directory_scans.plan_directory_scan(session=session, path=str(allowed),
                                                   allowed=[allowed], max_files=10)
    assert sorted(os.path.basename(s.path) for s in plan.changed) == ["a.txt", "b.txt"]
    # between the walk and the read: the file becomes a link, the directory too
    (allowed / "a.txt").unlink()
    (allowed / "a.txt").symlink_to(outside / "secret.txt")
    (allowed / "sub" / "b.txt").unlink()
    (allowed / "sub").rmdir()
    (allowed / "sub").symlink_to(outside / "sub")
    outcomes = directory_scans.execute_directory_scan(plan, scanner=scanner)
    assert [(os.path.basename(o.seen.path), o.result, o.error) for o in outcomes] == [
        ("a.txt", None, "Too many levels of symbolic links"),
        ("b.txt", None, "path leads outside the scanned directory")]


def test_a_dlp_upload_stores_again_what_an_admin_deleted(sqlite_env):
    settings = get_settings()
    submission = _submit([("eicar.com", EICAR)])
    _run_job(submission.jobs[0][0])  # malicious: quarantined
    sha = submission.scans[0].sha256
    with session_scope() as session:
        row = quarantine.delete(session=session, sha256=sha, ctx=CTX)
        session.flush()
        quarantine.apply_decision(session=session, store=get_store(settings), row=row)
    client = TestClient(create_app(), raise_server_exceptions=False)
    analyst = make_key("analyst")
    resp = client.post("/v1/dlp/scans", headers=auth(analyst),
                       files=[("file", ("again.com", EICAR))])
    assert resp.status_code == 202, resp.text
    with session_scope() as session:
        assert session.get(StoredFile, sha).state == "stored"
    assert get_store(settings).read(sha) == EICAR  # and the row tells the truth about it


def test_the_staging_key_is_not_in_a_repr(sqlite_env):
    store = get_store(get_settings())
    staged = store.stage("x.txt", 100)
    try:
        text = repr(staged)
    finally:
        staged.discard()
    assert "x.txt" in text
    assert "_bind_key" not in text and "_nonce" not in text and "_encryptor" not in text


def test_platform_tasks_have_their_own_queue_and_sleep_is_capped(sqlite_env):
    routes = celery_config(get_settings())["task_routes"]
    assert KINDS["alerts.deliver"].queue == "system"
    assert routes["alerts.deliver"] == routes[REAP_TASK] == routes[KEY_USE_TASK] == {
        "queue": "system"}
    assert "system" in LIGHT_QUEUES  # the light worker of `secops up` consumes it
    assert KINDS["system.ping"].queue == "default"
    client = TestClient(create_app(), raise_server_exceptions=False)
    analyst, admin = make_key("analyst"), make_key("admin")
    body = assert_problem(client.post("/v1/jobs", headers=auth(analyst), json={
        "kind": "system.ping", "params": {"sleep": 60}}), 422)
    assert body["detail"] == "system.ping may sleep at most 5 s for this key's role"
    assert_problem(client.post("/v1/jobs/batch", headers=auth(analyst), json={"jobs": [
        {"kind": "system.ping", "params": {"sleep": 1}},
        {"kind": "system.ping", "params": {"sleep": 6}}]}), 422)
    assert client.post("/v1/jobs", headers=auth(analyst), json={
        "kind": "system.ping", "params": {"sleep": 5}}).status_code == 202
    assert client.post("/v1/jobs", headers=auth(admin), json={
        "kind": "system.ping", "params": {"sleep": 60}}).status_code == 202
