"""Service keys stay within their own objects, and DLP answers carry no digests.

A job is run in-process through the same service steps as the worker's handler (no
Celery needed for what is checked here).
"""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from secops.api.app import create_app
from secops.config import get_settings
from secops.db.models import DlpFinding, Job
from secops.db.session import session_scope
from secops.services import dlp
from secops.services.storage import get_store
from tests.factories import auth, make_key
from tests.security.conftest import assert_problem

SSN_TEXT = "employee record: SSN 536-22-1234, card 4111 1111 1111 1111"
BOUNDARY = "fence"


def _classify(job_id: str) -> None:
    settings = get_settings()
    with session_scope() as session:
        job = session.get(Job, job_id)
        plan = dlp.plan_classify(session=session, job=job)
    document, error = dlp.execute_classify(plan, store=get_store(settings), settings=settings)
    with session_scope() as session:
        dlp.record_classification(session=session, plan=plan, document=document, error=error,
                                  kv=None)


def _upload(client: TestClient, key: str, name: str, data: bytes) -> dict:
    body = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{name}\"\r\n\r\n").encode() + data + f"\r\n--{BOUNDARY}--\r\n".encode()
    resp = client.post("/v1/scans", content=body, headers={
        **auth(key), "content-type": f"multipart/form-data; boundary={BOUNDARY}"})
    assert resp.status_code == 202, resp.text
    return resp.json()["scans"][0]


def test_dlp_findings_are_answered_without_digests(sqlite_env):
    client = TestClient(create_app(), raise_server_exceptions=False)
    key = make_key("analyst")
    submitted = client.post("/v1/dlp/scans", json={"text": SSN_TEXT}, headers=auth(key))
    assert submitted.status_code == 202, submitted.text
    _classify(submitted.json()["job_id"])
    scan = client.get(f"/v1/dlp/scans/{submitted.json()['id']}", headers=auth(key)).json()
    assert scan["status"] == "complete"
    assert sorted(f["type"] for f in scan["findings"]) == ["credit_card", "us_ssn"]
    assert all("digest" not in f for f in scan["findings"])
    with session_scope() as session:  # kept in the database for correlation by operators
        assert all(len(d or "") == 64 for d in session.scalars(select(DlpFinding.digest)))


def test_service_keys_name_only_their_own_objects_in_params(sqlite_env):
    client = TestClient(create_app(), raise_server_exceptions=False)
    victim = make_key("service", kinds=["scan.file", "dlp.classify"], name="victim")
    other = make_key("service", kinds=["scan.file", "dlp.classify"], name="other")
    secret = b"victim's private file " * 10
    victim_scan = _upload(client, victim, "private.txt", secret)
    victim_dlp = client.post("/v1/dlp/scans", json={"text": SSN_TEXT}, headers=auth(victim))
    assert victim_dlp.status_code == 202
    sha = victim_scan["sha256"]

    attempts = [
        {"kind": "scan.file", "params": {"scan_ids": [victim_scan["id"]]}},
        {"kind": "scan.file", "params": {"scan_id": victim_scan["id"]}},
        {"kind": "scan.file", "params": {"sha256": sha}},
        {"kind": "dlp.classify", "params": {"dlp_scan_id": victim_dlp.json()["id"]}},
        {"kind": "dlp.classify", "params": {"sha256": sha}},
    ]
    for body in attempts:
        assert_problem(client.post("/v1/jobs", json=body, headers=auth(other)), 404)
    assert_problem(client.post("/v1/dlp/scans", json={"sha256": sha}, headers=auth(other)), 404)
    with session_scope() as session:  # nothing was created for the intruder
        assert session.scalars(select(Job.kind).where(Job.submitted_by.like("key:%"))).all() \
            == ["scan.file", "dlp.classify"]

    # the owner may, and so may the other key once it uploaded the same content itself
    assert client.post("/v1/jobs", json=attempts[2], headers=auth(victim)).status_code == 202
    own = _upload(client, other, "mine.txt", secret)
    assert client.post("/v1/jobs", json=attempts[2], headers=auth(other)).status_code == 202
    assert client.post("/v1/dlp/scans", json={"sha256": sha},
                       headers=auth(other)).status_code == 202
    # an admin is not fenced
    admin = make_key("admin")
    assert client.post("/v1/jobs", json=attempts[0], headers=auth(admin)).status_code == 202
    assert own["sha256"] == sha


def test_cached_from_does_not_name_another_submitters_scan(sqlite_env):
    from tests.services.test_scan_jobs import _run_job

    client = TestClient(create_app(), raise_server_exceptions=False)
    first = make_key("service", kinds=["scan.file"], name="first")
    second = make_key("service", kinds=["scan.file"], name="second")
    data = b"shared content " * 20
    scan1 = _upload(client, first, "a.txt", data)
    _run_job(scan1["job_id"])
    again = _upload(client, first, "a.txt", data)  # the same submitter: the link is shown
    assert again["cached"] is True and again["cached_from"] == scan1["id"]
    theirs = _upload(client, second, "b.txt", data)
    assert theirs["cached"] is True and theirs["cached_from"] is None
    read = client.get(f"/v1/scans/{theirs['id']}", headers=auth(second)).json()
    assert read["cached_from"] is None and read["verdict"] == "clean"
