"""A service key sees only its own jobs, scans and DLP scans: another's answers 404, the
same answer as an id that does not exist, while an admin sees them all."""

from __future__ import annotations

from fastapi.testclient import TestClient

from secops.api.app import create_app
from tests.factories import auth, make_key


def test_service_keys_get_404_for_records_of_others(sqlite_env):
    client = TestClient(create_app(), raise_server_exceptions=False)
    admin = make_key()
    kinds = ["system.ping", "scan.file", "dlp.classify"]
    owner = make_key(role="service", kinds=kinds, name="owner")
    other = make_key(role="service", kinds=kinds, name="other")

    job = client.post("/v1/jobs", json={"kind": "system.ping"}, headers=auth(owner))
    scan = client.post("/v1/scans", files={"file": ("a.txt", b"hello")}, headers=auth(owner))
    dlp = client.post("/v1/dlp/scans", json={"text": "nothing to see"}, headers=auth(owner))
    assert (job.status_code, scan.status_code, dlp.status_code) == (202, 202, 202)
    paths = {"job": f"/v1/jobs/{job.json()['id']}",
             "scan": f"/v1/scans/{scan.json()['scans'][0]['id']}",
             "DLP scan": f"/v1/dlp/scans/{dlp.json()['id']}"}
    for what, path in paths.items():
        assert client.get(path, headers=auth(owner)).status_code == 200, path
        assert client.get(path, headers=auth(admin)).status_code == 200, path
        theirs = client.get(path, headers=auth(other))
        missing = client.get(path.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000",
                             headers=auth(other))
        assert (theirs.status_code, missing.status_code) == (404, 404), path
        assert theirs.json()["detail"] == missing.json()["detail"] == f"{what} not found"
    cancel = client.post(f"{paths['job']}/cancel", headers=auth(other))
    assert cancel.status_code == 404
    assert client.get(paths["job"], headers=auth(owner)).json()["status"] == "queued"
