"""The jobs API against a real database (SQLite and PostgreSQL) and a real Redis broker."""

from __future__ import annotations

import threading

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from secops.api.app import create_app
from secops.db.models import IdempotencyRecord, Job
from secops.db.session import session_scope
from tests.factories import auth, make_key

PROBLEM = "application/problem+json"


@pytest.fixture
def client(platform_env: dict[str, str]) -> TestClient:
    return TestClient(create_app(), raise_server_exceptions=False)


def job_count() -> int:
    with session_scope() as s:
        return int(s.scalar(select(func.count()).select_from(Job)) or 0)


def queued_messages(env: dict[str, str], queue: str = "default") -> int:
    return int(redis.Redis.from_url(env["SECOPS_REDIS_URL"]).llen(queue))


def assert_problem(resp, status: int) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM)
    body = resp.json()
    assert body["status"] == status and body["request_id"] == resp.headers["x-request-id"]
    assert {"type", "title", "detail"} <= body.keys()
    assert "Traceback" not in resp.text
    return body


def test_submit_creates_queued_job_and_publishes_it(client, platform_env):
    key = make_key()
    resp = client.post("/v1/jobs", json={"kind": "system.ping", "params": {"message": "hi"}},
                       headers=auth(key))
    assert resp.status_code == 202, resp.text
    job = resp.json()
    assert job["status"] == "queued" and job["params"]["message"] == "hi"
    assert job["submitted_by"].startswith("key:")
    assert client.get(f"/v1/jobs/{job['id']}", headers=auth(key)).json()["id"] == job["id"]
    # the message on the broker carries the job id as the Celery task id
    raw = redis.Redis.from_url(platform_env["SECOPS_REDIS_URL"]).lrange("default", 0, -1)
    assert len(raw) == 1 and job["id"].encode() in raw[0]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"kind": "no.such_kind", "params": {}}, 422),
        ({"kind": "system.ping", "params": {"sleep": -1}}, 422),
        ({"kind": "system.ping", "params": {"unknown": 1}}, 422),
        ({"kind": "NOT A KIND"}, 422),
        ({"params": {}}, 422),
    ],
)
def test_bad_submissions_get_problem_and_change_nothing(client, platform_env, body, status):
    key = make_key()
    before = job_count()
    body_out = assert_problem(client.post("/v1/jobs", json=body, headers=auth(key)), status)
    assert body_out["detail"]
    assert job_count() == before
    assert queued_messages(platform_env) == 0


def test_malformed_json_is_400_and_changes_nothing(client, platform_env):
    key = make_key()
    resp = client.post("/v1/jobs", content=b'{"kind": "system.ping",',
                       headers={**auth(key), "content-type": "application/json"})
    assert_problem(resp, 400)
    assert job_count() == 0


def test_oversized_body_is_413(client):
    key = make_key()
    resp = client.post("/v1/jobs", json={"kind": "system.ping",
                                         "params": {"message": "x" * 2_000_000}},
                       headers=auth(key))
    assert_problem(resp, 413)
    assert job_count() == 0


def test_unknown_job_is_404(client):
    key = make_key()
    body = assert_problem(client.get("/v1/jobs/00000000-0000-0000-0000-000000000000",
                                     headers=auth(key)), 404)
    assert body["detail"] == "job not found"
    assert_problem(client.post("/v1/jobs/nope/cancel", headers=auth(key)), 404)


@pytest.mark.parametrize("header", [None, "Bearer nonsense",
                                    "Bearer secops_aaaaaaaa_" + "A" * 43, "Basic Zm9vOmJhcg=="])
def test_bad_key_is_401_with_one_message(client, header):
    make_key()
    headers = {"Authorization": header} if header else {}
    before = job_count()
    body = assert_problem(client.post("/v1/jobs", json={"kind": "system.ping"}, headers=headers),
                          401)
    assert body["detail"] == "authentication failed"
    assert job_count() == before


@pytest.mark.parametrize("header", [None, "Bearer nonsense", "Basic Zm9vOmJhcg=="])
def test_polling_a_job_with_a_bad_key_is_401_and_reads_nothing(client, header):
    """The poll authenticates in the same worker-thread call that reads the job: first."""
    key = make_key()
    job = client.post("/v1/jobs", json={"kind": "system.ping"}, headers=auth(key)).json()
    headers = {"Authorization": header} if header else {}
    for path in (f"/v1/jobs/{job['id']}", "/v1/jobs/00000000-0000-0000-0000-000000000000"):
        body = assert_problem(client.get(path, headers=headers), 401)
        assert body["detail"] == "authentication failed" and "id" not in body
    answer = client.get(f"/v1/jobs/{job['id']}", headers=auth(key))
    assert answer.status_code == 200 and answer.json()["id"] == job["id"]
    assert answer.headers["ratelimit"] and answer.headers["ratelimit-policy"]


def test_revoked_and_expired_keys_fail_like_unknown(client, platform_env):
    from datetime import timedelta

    from secops.db.base import utcnow
    from secops.db.models import ApiKey
    from secops.services.keys import revoke_key

    revoked, expired = make_key(name="r"), make_key(name="e")
    with session_scope() as s:
        revoke_key(session=s, key_id=revoked.split("_")[1])
        record = s.scalar(select(ApiKey).where(ApiKey.prefix == expired.split("_")[1]))
        record.expires_at = utcnow() - timedelta(seconds=1)
    for key in (revoked, expired):
        body = assert_problem(client.get("/v1/jobs", headers=auth(key)), 401)
        assert body["detail"] == "authentication failed"


def test_list_filters_and_paginates(client):
    key = make_key()
    ids = [client.post("/v1/jobs", json={"kind": "system.ping", "params": {"message": str(i)}},
                       headers=auth(key)).json()["id"] for i in range(5)]
    page = client.get("/v1/jobs", params={"limit": 2, "offset": 1}, headers=auth(key)).json()
    assert page["total"] == 5 and len(page["items"]) == 2
    assert {j["id"] for j in page["items"]} <= set(ids)
    assert client.get("/v1/jobs", params={"status": "succeeded"},
                      headers=auth(key)).json()["total"] == 0
    assert client.get("/v1/jobs", params={"kind": "system.ping"},
                      headers=auth(key)).json()["total"] == 5
    assert_problem(client.get("/v1/jobs", params={"status": "weird"}, headers=auth(key)), 422)
    assert_problem(client.get("/v1/jobs", params={"limit": 0}, headers=auth(key)), 422)


def test_batch_submit_is_all_or_nothing(client, platform_env):
    key = make_key()
    good = [{"kind": "system.ping", "params": {"message": str(i)}} for i in range(20)]
    resp = client.post("/v1/jobs/batch", json={"jobs": good}, headers=auth(key))
    assert resp.status_code == 202, resp.text
    assert len(resp.json()["jobs"]) == 20
    assert queued_messages(platform_env) == 20
    bad = good + [{"kind": "system.ping", "params": {"sleep": "soon"}}]
    assert_problem(client.post("/v1/jobs/batch", json={"jobs": bad}, headers=auth(key)), 422)
    assert job_count() == 20 and queued_messages(platform_env) == 20


def test_idempotency_key(client, platform_env):
    key = make_key()
    headers = {**auth(key), "Idempotency-Key": "order-1"}
    body = {"kind": "system.ping", "params": {"message": "once"}}
    first = client.post("/v1/jobs", json=body, headers=headers)
    second = client.post("/v1/jobs", json=body, headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    assert job_count() == 1 and queued_messages(platform_env) == 1
    other = client.post("/v1/jobs", json={"kind": "system.ping", "params": {"message": "else"}},
                        headers=headers)
    assert_problem(other, 422)
    # the same key from another API key is another request
    assert client.post("/v1/jobs", json=body, headers={**auth(make_key(name="b")),
                                                       "Idempotency-Key": "order-1"}).json()[
        "id"] != first.json()["id"]


def test_idempotency_key_in_progress_is_409(client):
    key = make_key()
    from secops.services.idempotency import request_hash

    body = {"kind": "system.ping", "params": {"message": "x"}}
    owner = None
    with session_scope() as s:
        from secops.db.models import ApiKey

        owner = "key:" + s.scalar(select(ApiKey.id))
        canonical = {"kind": "system.ping", "params": {"message": "x"}}
        s.add(IdempotencyRecord(owner=owner, key="busy", request_hash=request_hash(canonical)))
    resp = client.post("/v1/jobs", json=body, headers={**auth(key), "Idempotency-Key": "busy"})
    assert_problem(resp, 409)
    assert job_count() == 0


def test_concurrent_same_idempotency_key_makes_one_job(client):
    key = make_key()
    headers = {**auth(key), "Idempotency-Key": "race"}
    statuses: list[int] = []
    ids: set[str] = set()

    def go() -> None:
        r = client.post("/v1/jobs", json={"kind": "system.ping"}, headers=headers)
        statuses.append(r.status_code)
        if r.status_code == 202:
            ids.add(r.json()["id"])

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(statuses) <= {202, 409} and 202 in statuses
    assert len(ids) == 1 and job_count() == 1


def test_cancel_queued_job(client):
    key = make_key()
    job = client.post("/v1/jobs", json={"kind": "system.ping"}, headers=auth(key)).json()
    resp = client.post(f"/v1/jobs/{job['id']}/cancel", headers=auth(key))
    assert resp.status_code == 200 and resp.json()["status"] == "cancelled"
    assert_problem(client.post(f"/v1/jobs/{job['id']}/cancel", headers=auth(key)), 409)


def test_broker_down_fails_jobs_with_503(platform_env, tmp_path):
    """A real API process that reaches Redis for its rate limits but cannot publish to the
    broker (a Redis ACL user without the list pushes kombu publishes with): the job is
    created, then failed, and the client gets 503; nothing is queued."""
    import secrets

    import httpx

    from tests.processes import start_api

    key = make_key()
    admin = redis.Redis.from_url(platform_env["SECOPS_REDIS_URL"])
    user, password = f"nobroker{secrets.token_hex(4)}", secrets.token_hex(16)
    admin.execute_command("ACL", "SETUSER", user, "reset", "on", f">{password}", "~*", "&*",
                          "+@all", "-lpush", "-rpush")
    port = admin.connection_pool.connection_kwargs["port"]
    env = dict(platform_env, SECOPS_REDIS_URL=f"redis://{user}:{password}@127.0.0.1:{port}/0")
    api, url = start_api(env, tmp_path / "api.log")
    try:
        resp = httpx.post(f"{url}/v1/jobs", json={"kind": "system.ping"}, headers=auth(key),
                          timeout=30)
        assert_problem(resp, 503)
        with session_scope() as s:
            jobs = s.scalars(select(Job)).all()
        assert [(j.kind, j.status, j.error) for j in jobs] == [
            ("system.ping", "failed", "the job queue was unavailable")]
        assert queued_messages(platform_env) == 0
    finally:
        api.stop()
        admin.execute_command("ACL", "DELUSER", user)


def test_redis_down_refuses_submissions_before_any_job(platform_env, tmp_path):
    """With Redis unreachable the rate limiter fails closed: 503 before any job exists."""
    import httpx

    from secops.embedded import free_port
    from tests.processes import start_api

    key = make_key()
    env = dict(platform_env, SECOPS_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    api, url = start_api(env, tmp_path / "api.log")
    try:
        resp = httpx.post(f"{url}/v1/jobs", json={"kind": "system.ping"},
                          headers={**auth(key), "Idempotency-Key": "k1"}, timeout=30)
        assert_problem(resp, 503)
        assert job_count() == 0
        with session_scope() as s:
            assert s.scalar(select(func.count()).select_from(IdempotencyRecord)) == 0
    finally:
        api.stop()


def test_service_key_submits_only_listed_kinds_and_sees_own_jobs(client):
    admin = make_key()
    service = make_key(role="service", kinds=["system.ping"], name="svc")
    mine = client.post("/v1/jobs", json={"kind": "system.ping"}, headers=auth(service)).json()
    theirs = client.post("/v1/jobs", json={"kind": "system.ping"}, headers=auth(admin)).json()
    assert client.get(f"/v1/jobs/{mine['id']}", headers=auth(service)).status_code == 200
    assert_problem(client.get(f"/v1/jobs/{theirs['id']}", headers=auth(service)), 404)
    assert client.get("/v1/jobs", headers=auth(service)).json()["total"] == 1


def test_auditor_cannot_submit(client):
    auditor = make_key(role="auditor", name="aud")
    assert_problem(client.post("/v1/jobs", json={"kind": "system.ping"}, headers=auth(auditor)),
                   403)
    assert job_count() == 0


def test_unknown_route_and_method_are_problems(client):
    assert_problem(client.get("/nope"), 404)
    assert_problem(client.put("/v1/jobs"), 405)


def test_readyz_without_worker_is_503_problem(client):
    resp = client.get("/readyz", headers=auth(make_key()))  # details for a valid key only
    body = assert_problem(resp, 503)
    assert body["checks"]["database"] == "ok" and body["checks"]["redis"] == "ok"
    assert body["checks"]["workers"] == 0
    assert client.get("/healthz").json() == {"status": "ok"}
