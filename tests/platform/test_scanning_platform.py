"""File scanning through the platform: API upload -> real worker -> results, quarantine, alerts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from secops.api.app import create_app
from secops.config import get_settings
from secops.db.models import Alert, AuditEntry, Job, ScanResult, SecurityEvent, StoredFile
from secops.db.session import session_scope
from secops.services.storage import MAGIC, get_store
from tests.factories import auth, make_key
from tests.platform.helpers import (
    api_with_file_size_limit,
    files_under,
    platform,
    wait_job,
    wait_scan,
)
from tests.scanning.corpus import EICAR, minimal_pe

pytestmark = pytest.mark.integration
BENIGN = b"quarterly report\n" * 200


def _upload(client: httpx.Client, files: list[tuple[str, bytes]], **params: str) -> dict:
    resp = client.post("/v1/scans", files=[("file", (n, d)) for n, d in files], params=params)
    assert resp.status_code == 202, resp.text
    return resp.json()


def test_upload_scan_quarantine_alert_cache_and_admin_release(platform_env, tmp_path, monkeypatch):
    with platform(platform_env, tmp_path, monkeypatch) as url:
        admin, analyst = make_key("admin"), make_key("analyst", name="analyst")
        client = httpx.Client(base_url=url, headers=auth(analyst), timeout=30)
        admin_client = httpx.Client(base_url=url, headers=auth(admin), timeout=30)
        body = _upload(client, [("eicar.com", EICAR), ("../../report.txt", BENIGN),
                                ("invoice.pdf", minimal_pe())])
        assert [s["filename"] for s in body["scans"]] == ["eicar.com", "report.txt", "invoice.pdf"]
        assert [s["status"] for s in body["scans"]] == ["pending"] * 3
        assert [s["file_state"] for s in body["scans"]] == ["stored"] * 3
        assert all(s["job_id"] and not s["cached"] for s in body["scans"])
        eicar, benign, disguised = (wait_scan(client, f"/v1/scans/{s['id']}")
                                    for s in body["scans"])

        assert eicar["verdict"] == "malicious" and eicar["file_state"] == "quarantined"
        assert "yara.SECOPS_EICAR_Test_File" in {f["rule_id"] for f in eicar["findings"]}
        assert benign["verdict"] == "clean" and benign["findings"] == []
        # an executable named as a PDF: high, so suspicious (no rule makes it malicious)
        assert disguised["verdict"] == "suspicious"
        assert "type.disguised_executable" in {f["rule_id"] for f in disguised["findings"]}

        # stored encrypted, content-addressed; the malicious file sits in the quarantine area
        data_dir = Path(platform_env["SECOPS_DATA_DIR"])
        quarantined = data_dir / "quarantine" / eicar["sha256"][:2] / eicar["sha256"]
        assert quarantined.is_file()
        for path in files_under(data_dir / "blobs") + files_under(data_dir / "quarantine"):
            raw = path.read_bytes()
            assert raw.startswith(MAGIC) and b"EICAR" not in raw and b"quarterly" not in raw
        assert files_under(data_dir / "tmp") == []

        with session_scope() as session:
            events = session.scalars(select(SecurityEvent)).all()
            kinds = {(e.kind, e.details.get("scan_id")) for e in events}
            assert ("scan.malicious", eicar["id"]) in kinds
            assert ("scan.suspicious", disguised["id"]) in kinds or disguised["verdict"] == "malicious"
            alerts = session.scalars(select(Alert).where(Alert.rule == "scan.malicious_upload")).all()
            assert [a.subject for a in alerts] == [eicar["id"]]

        # the same content with the same rules: the cached verdict, at once, marked so
        again = _upload(client, [("copy.txt", BENIGN), ("again.com", EICAR)])["scans"]
        assert [(s["cached"], s["status"], s["verdict"], s["job_id"]) for s in again] == [
            (True, "complete", "clean", None), (True, "complete", "malicious", None)]
        assert again[0]["cached_from"] == benign["id"]
        assert again[1]["findings"] == eicar["findings"]
        # the answer is built without reading back: it must match what a read returns
        assert [s["file_state"] for s in again] == ["stored", "quarantined"]
        assert again == [client.get(f"/v1/scans/{s['id']}").json() for s in again]
        with session_scope() as session:  # every malicious upload alerts, cached or not
            assert session.scalar(select(func.count()).select_from(Alert)
                                  .where(Alert.rule == "scan.malicious_upload")) == 2
        rescanned = _upload(client, [("copy.txt", BENIGN)], rescan="true")["scans"][0]
        assert not rescanned["cached"] and rescanned["job_id"]
        assert wait_scan(client, f"/v1/scans/{rescanned['id']}")["verdict"] == "clean"

        # release and delete: admin only, each audited
        sha = eicar["sha256"]
        assert client.post(f"/v1/quarantine/{sha}/release").status_code == 403
        assert client.delete(f"/v1/quarantine/{sha}").status_code == 403
        listed = admin_client.get("/v1/quarantine").json()
        assert [f["sha256"] for f in listed] == [sha]
        released = admin_client.post(f"/v1/quarantine/{sha}/release")
        assert released.status_code == 200 and released.json()["state"] == "released"
        assert not quarantined.exists()
        assert admin_client.post(f"/v1/quarantine/{sha}/release").status_code == 409

        other = EICAR + b"   \n"  # the test file followed by whitespace: another malicious file
        second = wait_scan(client, "/v1/scans/" + _upload(client, [("e2.com", other)])["scans"][0]["id"])
        assert second["verdict"] == "malicious" and second["file_state"] == "quarantined"
        gone = admin_client.delete(f"/v1/quarantine/{second['sha256']}")
        assert gone.status_code == 200 and gone.json()["state"] == "deleted"
        assert not any(p.name == second["sha256"] for p in files_under(data_dir))
        with session_scope() as session:
            actions = [(e.action, e.target) for e in session.scalars(
                select(AuditEntry).where(AuditEntry.action.like("quarantine.%")))]
            assert actions == [("quarantine.release", f"file:{sha}"),
                               ("quarantine.delete", f"file:{second['sha256']}")]
            assert session.get(StoredFile, second["sha256"]).state == "deleted"
            assert session.scalar(select(func.count()).select_from(AuditEntry)
                                  .where(AuditEntry.action == "scans.submit")) == 4


def test_oversize_and_bad_uploads_leave_nothing_behind(sqlite_env, monkeypatch):
    monkeypatch.setenv("SECOPS_SCAN_MAX_UPLOAD_BYTES", str(256 * 1024))
    monkeypatch.setenv("SECOPS_SCAN_MAX_FILES_PER_UPLOAD", "3")
    from secops.config import get_settings

    get_settings.cache_clear()
    client = TestClient(create_app(), raise_server_exceptions=False)
    headers = auth(make_key())
    data_dir = Path(sqlite_env["SECOPS_DATA_DIR"])

    def problem(resp, status: int) -> None:
        assert resp.status_code == status, resp.text
        assert resp.headers["content-type"].startswith("application/problem+json")

    big = os.urandom(256 * 1024 + 1)
    problem(client.post("/v1/scans", headers=headers,
                        files=[("file", ("ok.txt", BENIGN)), ("file", ("big.bin", big))]), 413)
    problem(client.post("/v1/scans", headers=headers,
                        files=[("file", (f"{i}.txt", b"x")) for i in range(4)]), 422)
    problem(client.post("/v1/scans", headers=headers, json={}), 422)
    problem(client.post("/v1/scans", headers=headers, files=[("other", ("a.txt", b"x"))]), 422)
    problem(client.post("/v1/scans", headers=headers, data={"rescan": "true"},
                        files=[]), 422)
    truncated = (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\n"
                 b"partial content")
    problem(client.post("/v1/scans", headers={**headers,
                                               "Content-Type": "multipart/form-data; boundary=b"},
                        content=truncated), 422)
    assert files_under(data_dir / "blobs") == [] and files_under(data_dir / "tmp") == []
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(ScanResult)) == 0
        assert session.scalar(select(func.count()).select_from(Job)) == 0
    # a declared body beyond every file's cap together is refused before it is read
    problem(client.post("/v1/scans", headers={**headers, "Content-Length": str(10**12),
                                               "Content-Type": "multipart/form-data; boundary=b"},
                        content=b""), 413)


def test_large_and_small_files_in_one_body_are_stored_exactly(sqlite_env, monkeypatch):
    """Files past the in-memory allowance are written in batches off the event loop,
    the rest at commit; every one is stored whole, and no staging file is left."""
    monkeypatch.setenv("SECOPS_SCAN_MAX_UPLOAD_BYTES", str(16 << 20))
    get_settings.cache_clear()
    client = TestClient(create_app(), raise_server_exceptions=False)
    files = [("big.bin", os.urandom(5 << 20)), ("a.txt", BENIGN), ("mid.bin", os.urandom(1 << 20)),
             ("edge.bin", os.urandom((1 << 20) - 40)), ("b.txt", b"second small file\n")]
    resp = client.post("/v1/scans", headers=auth(make_key()),
                       files=[("file", (name, data)) for name, data in files])
    assert resp.status_code == 202, resp.text
    store = get_store(get_settings())
    for (name, data), scan in zip(files, resp.json()["scans"], strict=True):
        assert scan["filename"] == name and scan["size"] == len(data)
        assert store.read(scan["sha256"]) == data
    assert files_under(Path(sqlite_env["SECOPS_DATA_DIR"]) / "tmp") == []


def test_scans_by_id_in_the_order_given_and_only_the_finished_on_request(sqlite_env):
    client = TestClient(create_app(), raise_server_exceptions=False)
    headers = auth(make_key())
    files = [(f"f{i}.txt", b"file %d\n" % i) for i in range(3)]
    resp = client.post("/v1/scans", headers=headers, files=[("file", f) for f in files])
    assert resp.status_code == 202, resp.text
    first, second, third = (s["id"] for s in resp.json()["scans"])
    with session_scope() as session:  # no worker here: two of them end as a worker would
        session.get(ScanResult, first).status = "complete"
        failed = session.get(ScanResult, third)
        failed.status, failed.error = "failed", "internal error (RuntimeError)"
    ids = ",".join([third, second, first, "no-such-scan"])

    def listed(**params: str) -> list[tuple[str, str]]:
        answer = client.get("/v1/scans", headers=headers, params={"ids": ids, **params})
        assert answer.status_code == 200, answer.text
        return [(s["id"], s["status"]) for s in answer.json()["scans"]]

    assert listed() == [(third, "failed"), (second, "pending"), (first, "complete")]
    assert listed(finished="false") == listed()
    assert listed(finished="true") == [(third, "failed"), (first, "complete")]
    for bad in ({"ids": ""}, {"ids": ",".join([first] * 101)}, {"ids": first, "finished": "maybe"}):
        answer = client.get("/v1/scans", headers=headers, params=bad)
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")


def test_a_file_store_that_cannot_grow_answers_503_and_keeps_nothing(sqlite_env, tmp_path):
    """A file store that cannot grow (see ``api_with_file_size_limit``): a server failure,
    not a bad request, and nothing staged or recorded is left."""
    key = make_key()
    data_dir = Path(sqlite_env["SECOPS_DATA_DIR"])
    with api_with_file_size_limit(sqlite_env, tmp_path) as (url, api):
        with httpx.Client(base_url=url, headers=auth(key), timeout=60) as client:
            spilled = client.post("/v1/scans", files=[("file", ("big.bin", os.urandom(3 << 20)))])
            at_commit = client.post("/v1/scans", files=[("file", ("mid.bin", os.urandom(900 << 10)))])
            for resp in (spilled, at_commit):
                assert resp.status_code == 503, resp.text
                assert resp.headers["content-type"].startswith("application/problem+json")
                assert resp.json()["detail"] == "the file store cannot take the upload now"
            assert files_under(data_dir / "blobs") == [] and files_under(data_dir / "tmp") == []
            with session_scope() as session:
                assert session.scalar(select(func.count()).select_from(ScanResult)) == 0
                assert session.scalar(select(func.count()).select_from(Job)) == 0
            assert client.post("/v1/scans", files=[("file", ("ok.txt", BENIGN))]).status_code == 202
    assert api.output().count("upload could not be stored") == 2


def test_the_api_moves_a_store_of_the_earlier_layout_at_start_up(sqlite_env):
    store = get_store(get_settings())
    staged = store.stage_bytes(BENIGN, "old.txt")
    store.commit(staged)
    sha, flat = staged.sha256, Path(store.root / "blobs" / staged.sha256[:2] / staged.sha256)
    legacy = flat.parent / sha[2:4] / sha
    legacy.parent.mkdir()
    flat.rename(legacy)
    client = TestClient(create_app(), raise_server_exceptions=False)
    assert flat.is_file() and not legacy.parent.exists()
    assert client.get("/healthz").status_code == 200 and store.read(sha) == BENIGN


def test_an_upload_repeated_with_its_idempotency_key_returns_the_same_scans(sqlite_env):
    client = TestClient(create_app(), raise_server_exceptions=False)
    key = make_key()
    headers = {**auth(key), "Idempotency-Key": "upload-42"}
    data_dir = Path(sqlite_env["SECOPS_DATA_DIR"])
    files = [("file", ("a.txt", BENIGN)), ("file", ("b.com", EICAR))]
    first = client.post("/v1/scans", headers=headers, files=files)
    assert first.status_code == 202, first.text
    again = client.post("/v1/scans", headers=headers, files=files)
    assert again.status_code == 202, again.text
    assert [s["id"] for s in again.json()["scans"]] == [s["id"] for s in first.json()["scans"]]
    assert files_under(data_dir / "tmp") == []
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(ScanResult)) == 2
        assert session.scalar(select(func.count()).select_from(AuditEntry)
                              .where(AuditEntry.action == "scans.submit")) == 1
        jobs = session.scalar(select(func.count()).select_from(Job))
    # the same key with other content, or for another route, is a client error
    other = client.post("/v1/scans", headers=headers, files=[("file", ("a.txt", b"changed"))])
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["detail"]
    rescan = client.post("/v1/scans", headers=headers, files=files, params={"rescan": "true"})
    assert rescan.status_code == 422
    as_job = client.post("/v1/jobs", headers=headers, json={"kind": "system.ping", "params": {}})
    assert as_job.status_code == 422
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(ScanResult)) == 2
        assert session.scalar(select(func.count()).select_from(Job)) == jobs
    # another key, or none, is a new submission (answered from the cache here)
    fresh = client.post("/v1/scans", headers={**auth(key), "Idempotency-Key": "upload-43"},
                        files=files)
    assert fresh.status_code == 202 and [s["cached"] for s in fresh.json()["scans"]] == [False] * 2


def test_directory_scan_rescans_only_changed_files(sqlite_env, tmp_path, monkeypatch):
    watched = tmp_path / "watched"
    (watched / "sub").mkdir(parents=True)
    (watched / "a.txt").write_bytes(b"alpha\n")
    (watched / "sub" / "b.txt").write_bytes(b"beta\n")
    (watched / "sub" / "eicar.com").write_bytes(EICAR)
    os.symlink("/etc/passwd", watched / "link")
    extra = {"SECOPS_SCAN_ALLOWED_DIRS": json.dumps([str(watched)])}
    with platform(sqlite_env, tmp_path, monkeypatch, extra) as url:
        client = httpx.Client(base_url=url, headers=auth(make_key()), timeout=30)

        def run(path: str) -> dict:
            resp = client.post("/v1/jobs", json={"kind": "scan.directory", "params": {"path": path}})
            assert resp.status_code == 202, resp.text
            job = wait_job(client, resp.json()["id"])
            assert job["status"] == "succeeded", job
            return job["result"]

        first = run(str(watched))
        assert (first["scanned"], first["unchanged"], first["skipped"]) == (3, 0, 1)
        assert first["verdicts"] == {"clean": 2, "suspicious": 0, "malicious": 1}
        assert run(str(watched))["scanned"] == 0
        (watched / "a.txt").write_bytes(b"alpha, changed\n")
        (watched / "c.txt").write_bytes(b"gamma\n")
        (watched / "sub" / "eicar.com").unlink()
        os.utime(watched / "sub" / "b.txt", ns=(1, 1))  # touched, same content
        third = run(str(watched))
        assert (third["scanned"], third["unchanged"], third["content_unchanged"],
                third["vanished"]) == (2, 0, 1, 1)
        scans = [client.get(f"/v1/scans/{i}").json() for i in third["scan_ids"]]
        assert sorted(Path(s["path"]).name for s in scans) == ["a.txt", "c.txt"]

        for bad in ("/etc", str(watched / ".." / ".."), "relative/path"):
            resp = client.post("/v1/jobs", json={"kind": "scan.directory", "params": {"path": bad}})
            assert resp.status_code == 422, resp.text
        schedule = client.post("/v1/schedules", json={
            "name": "watched", "kind": "scan.directory", "params": {"path": str(watched)},
            "interval_seconds": 3600})
        assert schedule.status_code == 201, schedule.text
        with session_scope() as session:
            assert session.scalar(select(func.count()).select_from(SecurityEvent)
                                  .where(SecurityEvent.kind == "scan.malicious")) == 1
            assert session.scalar(select(func.count()).select_from(Alert)) == 0  # uploads only


def test_cli_scans_through_the_api(sqlite_env, tmp_path, monkeypatch):
    import subprocess
    import sys

    tree = tmp_path / "tree"
    (tree / "nested").mkdir(parents=True)
    (tree / "a.txt").write_bytes(BENIGN)
    (tree / "nested" / "eicar.com").write_bytes(EICAR)
    (tree / 'q"uoted name é.txt').write_bytes(b"")  # quoting in the multipart body; empty
    with platform(sqlite_env, tmp_path, monkeypatch) as url:
        env = {**os.environ, **sqlite_env, "SECOPS_API_URL": url, "SECOPS_API_KEY": make_key()}

        def scan(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "secops.cli", "scan", *args], env=env,
                                  capture_output=True, text=True, timeout=120)

        first = scan("--json", str(tree))
        assert first.returncode == 1, first.stderr
        lines = [json.loads(line) for line in first.stdout.splitlines()]
        assert [(Path(r["path"]).name, r["verdict"], r["cached"]) for r in lines] == [
            ("a.txt", "clean", False), ('q"uoted name é.txt', "clean", False),
            ("eicar.com", "malicious", False)]
        assert lines[1]["size"] == 0
        assert {"path", "sha256", "size", "mime", "verdict", "findings"} <= lines[2].keys()
        assert lines[2]["findings"][0].keys() == {"id", "severity", "description", "location"}
        table = scan(str(tree / "a.txt"))
        assert table.returncode == 0 and "CLEAN" in table.stdout and "(cached)" in table.stdout
        missing = scan("--json", str(tree / "nope.txt"))
        assert missing.returncode == 2
        assert scan("--rules-dir", str(tree), str(tree)).returncode == 2  # a local-only option


def test_cli_uploads_batches_concurrently_and_reports_every_file(sqlite_env, tmp_path, monkeypatch):
    """More files than one upload batch: two upload streams, jobs of several files each,
    one oversized file reported alone, every other file answered, in path order."""
    import subprocess
    import sys

    tree = tmp_path / "many"
    tree.mkdir()
    for i in range(44):
        (tree / f"f{i:02d}.txt").write_bytes(f"line {i}\n".encode() * (20 + i))
    (tree / "f25_big.log").write_bytes(b"x" * (96 * 1024))
    extra = {"SECOPS_SCAN_MAX_UPLOAD_BYTES": str(64 * 1024), "SECOPS_SCAN_JOB_MAX_FILES": "4"}
    with platform(sqlite_env, tmp_path, monkeypatch, extra=extra) as url:
        env = {**os.environ, **sqlite_env, **extra, "SECOPS_API_URL": url,
               "SECOPS_API_KEY": make_key()}
        run = subprocess.run([sys.executable, "-m", "secops.cli", "scan", "--json", str(tree)],
                             env=env, capture_output=True, text=True, timeout=180)
        assert run.returncode == 2, run.stderr  # one file could not be scanned
        lines = [json.loads(line) for line in run.stdout.splitlines()]
        assert [Path(r["path"]).name for r in lines] == sorted(p.name for p in tree.iterdir())
        errors = [r for r in lines if "error" in r]
        assert [Path(r["path"]).name for r in errors] == ["f25_big.log"]
        assert "larger than" in errors[0]["error"]
        assert all(r["verdict"] == "clean" for r in lines if "error" not in r)
        with session_scope() as session:
            assert session.scalar(select(func.count()).select_from(ScanResult)) == 44
            jobs = session.scalars(select(Job).where(Job.kind == "scan.file")).all()
            assert all(j.status == "succeeded" for j in jobs)
            assert len(jobs) < 44 and max(len(j.params["scan_ids"]) for j in jobs) == 4
            assert sum(len(j.params["scan_ids"]) for j in jobs) == 44
