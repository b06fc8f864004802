"""The sweep ``privacy.deadlines`` runs over requests whose jobs are all final: one whose
sub-job the reaper failed (a poison job, which no failure hook saw) is failed; one whose
sub-jobs all succeeded but whose last completion was lost is completed with its receipt.
The sub-jobs' handlers run in this process, against real SQLite stores."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from secops.api.app import create_app
from secops.config import get_settings
from secops.db.models import Job, PrivacyRequest, SecurityEvent
from secops.db.session import session_scope
from secops.privacy.receipt import verify
from secops.services import jobs as job_service
from secops.services import privacy, privacy_jobs
from secops.services.storage import get_store
from tests.factories import auth, make_key, stored
from tests.privacy import shop

pytestmark = pytest.mark.integration


def _verified_erasure(client: TestClient, key: str, box, email: str) -> str:
    created = client.post("/v1/privacy/requests", headers=auth(key), json={
        "type": "erasure", "identities": {"email": email}, "contact_email": "subject@example.net"})
    assert created.status_code == 201, created.text
    rid = str(created.json()["id"])
    verified = client.post(f"/v1/privacy/requests/{rid}/verify", json={"code": box.codes()[-1]},
                           headers=auth(key))
    assert verified.status_code == 202, verified.text
    return rid


def _fan_out(rid: str) -> dict[str, str]:
    settings = get_settings()
    with session_scope() as s:
        req = s.get(PrivacyRequest, rid)
        assert req is not None and req.job_id is not None
        result, _ = privacy_jobs.fan_out(session=s, settings=settings, request_id=rid, job_id=req.job_id,
                                         kind=privacy_jobs.ERASE_STORE_KIND)
    return dict(result["sub_jobs"])


def _reconcile() -> None:
    settings = get_settings()
    with session_scope() as s:
        deliveries, parts = privacy_jobs.reconcile(session=s, settings=settings, blobs=get_store(settings))
    assert parts == []


def _request(key: str) -> PrivacyRequest:
    return stored(PrivacyRequest, key)


@pytest.mark.parametrize("platform_env", ["sqlite"], indirect=True)
def test_the_sweep_fails_a_request_of_a_poison_sub_job_and_completes_a_lost_completion(privacy_platform):
    box = privacy_platform["mailbox"]
    client, key = TestClient(create_app(), raise_server_exceptions=False), make_key("analyst")
    poisoned = _verified_erasure(client, key, box, shop.ALICE_EMAIL)
    lost = _verified_erasure(client, key, box, "bob@example.org")
    poisoned_jobs, lost_jobs = _fan_out(poisoned), _fan_out(lost)
    assert list(poisoned_jobs) == list(lost_jobs) == ["shop"]

    _reconcile()  # nothing is final yet: nothing changes
    assert _request(poisoned).status == _request(lost).status == "in_progress"

    with session_scope() as s:  # what the reaper writes for a job that never finished
        assert job_service.fail_job(session=s, job_id=poisoned_jobs["shop"],
                                    error="poison job: started 3 times without finishing")
    # Bob's sub-job ran (its handler, here), but its completion of the request was lost:
    # the job is recorded as succeeded with its result, the request is still in progress
    settings = get_settings()
    with session_scope() as s:
        result, _ = privacy_jobs.run_erase_store(session=s, settings=settings, request_id=lost,
                                                 store_name="shop", job_id="not-the-sub-job")
        s.rollback()
    with session_scope() as s:
        assert job_service.complete_job(session=s, job_id=lost_jobs["shop"], result=result)
    assert _request(lost).status == "in_progress"

    _reconcile()
    failed = _request(poisoned)
    assert failed.status == "failed" and failed.result is not None
    assert failed.result["failure"] == {"store": "shop", "job_id": poisoned_jobs["shop"],
                                        "reason": "poison job: started 3 times without finishing"}
    done = _request(lost)
    assert done.status == "completed" and done.result is not None and done.result["verified"] is True
    body = verify(done.result["receipt"], privacy_platform["signing"].public_key())
    assert ("users", 1) in [(a["table"], a["rows"]) for a in body["actions"]]
    with session_scope() as s:
        kinds = sorted(s.scalars(sa.select(SecurityEvent.kind).where(
            SecurityEvent.kind.in_(["privacy.request_failed", "privacy.erasure"]))).all())
        assert kinds == ["privacy.erasure", "privacy.request_failed"]
        assert s.get(Job, lost_jobs["shop"]).status == "succeeded"  # type: ignore[union-attr]
    _reconcile()  # a second sweep changes nothing
    assert _request(poisoned).history == failed.history and _request(lost).history == done.history
    # the Art 12(3) clock still runs for a failed request: it is reported overdue, the done one not
    with session_scope() as s:
        privacy.check_deadlines(session=s, settings=settings, kv=None,
                                now=failed.due_at + dt.timedelta(days=1))
    with session_scope() as s:
        overdue = s.scalars(sa.select(SecurityEvent).where(
            SecurityEvent.kind == "privacy.request_overdue")).all()
        assert [e.details["request_id"] for e in overdue] == [poisoned]
