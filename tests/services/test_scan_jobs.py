"""``scan.file`` jobs of several files: how an upload is split, and how one bad file in a
job fails alone (real database, real encrypted store, real scanner; no worker needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from secops.config import get_settings
from secops.db.models import Job, ScanFinding, ScanResult, SecurityEvent
from secops.db.session import session_scope
from secops.services import scan_recording, scans
from secops.services.audit import AuditContext
from secops.services.jobs import complete_job, create_job
from secops.services.storage import get_store
from tests.scanning.corpus import EICAR

CTX = AuditContext(actor="key:test", request_id="r1", client_ip="127.0.0.1")


def _blob(store, name: str, data: bytes):
    staged = store.stage(name, 1 << 20)
    staged.write(data)
    staged.finish()
    return staged


def _submit(files: list[tuple[str, bytes]], **limits: int) -> scans.Submission:
    settings = get_settings()
    store = get_store(settings)
    version = scans.get_scanner(settings).ruleset_version
    limits = {"job_max_files": settings.scan_job_max_files,
              "job_max_bytes": settings.scan_job_max_bytes, **limits}
    with session_scope() as session:
        return scans.submit_uploads(
            session=session, store=store, staged=[_blob(store, n, d) for n, d in files],
            submitted_by="key:test", rescan=False, ruleset_version=version, audit_ctx=CTX,
            **limits)


def _run_job(job_id: str) -> dict:
    """The scan.file handler's three steps and the job's completion, as the worker runs
    them (without Celery)."""
    settings = get_settings()
    scanner, store = scans.get_scanner(settings), get_store(settings)
    with session_scope() as session:
        job = session.get(Job, job_id)
        plan = scan_recording.plan_file_scan(session=session, job=job,
                                             ruleset_version=scanner.ruleset_version)
    executed = scan_recording.execute_file_scans(plan, store=store, scanner=scanner,
                                                 dlp_on_scan=False, settings=settings)
    with session_scope() as session:
        summary = scan_recording.record_file_scans(session=session, plan=plan, executed=executed,
                                                   store=store, kv=None).summary
        complete_job(session=session, job_id=job_id, result=summary)
        return summary


def test_job_groups_respect_file_and_byte_limits():
    def rows(*sizes: int) -> list[ScanResult]:
        return [ScanResult(id=str(i), size=s) for i, s in enumerate(sizes)]

    def shape(groups: list[list[ScanResult]]) -> list[list[str]]:
        return [[s.id for s in g] for g in groups]

    assert shape(scans.job_groups(rows(1, 1, 1, 1, 1), max_files=2, max_bytes=100)) == [
        ["0", "1"], ["2", "3"], ["4"]]
    # a file over the byte limit gets a job of its own; order is kept
    assert shape(scans.job_groups(rows(10, 500, 10, 60, 50), max_files=8, max_bytes=100)) == [
        ["0"], ["1"], ["2", "3"], ["4"]]
    assert scans.job_groups([], max_files=8, max_bytes=100) == []


def test_an_upload_is_split_into_jobs_and_each_job_scans_its_files(platform_env):
    files = [(f"r{i}.txt", f"report {i}\n".encode() * 50) for i in range(4)] + [("e.com", EICAR)]
    submission = _submit(files, job_max_files=2)
    assert len(submission.jobs) == 3
    with session_scope() as session:
        jobs = {j.id: j.params for j in session.scalars(select(Job))}
        assert sorted(len(p["scan_ids"]) for p in jobs.values()) == [1, 2, 2]
        by_scan = {s.id: s.job_id for s in session.scalars(select(ScanResult))}
    for job_id, params in jobs.items():
        assert {by_scan[i] for i in params["scan_ids"]} == {job_id}

    summaries = {job_id: _run_job(job_id) for job_id in jobs}
    for job_id, summary in summaries.items():
        assert summary["count"] == len(jobs[job_id]["scan_ids"])
        assert [s["scan_id"] for s in summary["scans"]] == jobs[job_id]["scan_ids"]
    with session_scope() as session:
        results = {s.filename: s for s in session.scalars(select(ScanResult))}
        assert {n: s.verdict for n, s in results.items()} == {
            "r0.txt": "clean", "r1.txt": "clean", "r2.txt": "clean", "r3.txt": "clean",
            "e.com": "malicious"}
        assert all(s.status == "complete" and s.error is None for s in results.values())
        assert results["r0.txt"].mime == "text/plain" and results["r0.txt"].completed_at
        assert results["e.com"].ruleset_version == scans.get_scanner(get_settings()).ruleset_version
        [job_of_eicar] = [j for j, p in jobs.items() if results["e.com"].id in p["scan_ids"]]
        assert session.get(Job, job_of_eicar).result == summaries[job_of_eicar]
    # a redelivered job finds its files done and changes nothing
    with session_scope() as session:
        before = session.scalars(select(ScanFinding.id)).all()
    assert before  # EICAR's findings
    for job_id in jobs:
        again = _run_job(job_id)
        assert [s["verdict"] for s in again["scans"]] == [
            s["verdict"] for s in summaries[job_id]["scans"]]
    with session_scope() as session:
        assert session.scalars(select(ScanFinding.id)).all() == before


def test_a_tampered_file_fails_alone_and_raises_a_security_event(platform_env):
    files = [("a.txt", b"alpha\n" * 100), ("b.txt", b"bravo\n" * 100), ("c.txt", b"charlie\n" * 100)]
    submission = _submit(files)
    [(job_id, _)] = submission.jobs
    b = next(s for s in submission.scans if s.filename == "b.txt")
    stored = Path(get_settings().data_dir) / "blobs" / b.sha256[:2] / b.sha256
    raw = bytearray(stored.read_bytes())
    raw[40] ^= 0x01  # one flipped bit in the ciphertext: the GCM tag no longer verifies
    stored.write_bytes(bytes(raw))

    summary = _run_job(job_id)
    outcome = {s["scan_id"]: s for s in summary["scans"]}
    assert outcome[b.id]["verdict"] is None and "authentication" in outcome[b.id]["error"]
    assert summary["verdicts"] == {"clean": 2, "failed": 1}
    with session_scope() as session:
        rows = {s.filename: s for s in session.scalars(select(ScanResult))}
        assert rows["b.txt"].status == "failed" and "authentication" in rows["b.txt"].error
        assert rows["a.txt"].status == rows["c.txt"].status == "complete"
        [event] = session.scalars(select(SecurityEvent).where(
            SecurityEvent.kind == "storage.corrupt")).all()
        assert event.severity == "high" and event.details["scan_id"] == b.id


def test_a_job_naming_a_scan_of_another_job_answers_for_it(platform_env):
    submission = _submit([("a.txt", b"alpha\n" * 10)])
    [scan] = submission.scans
    with session_scope() as session:
        job = create_job(session=session, kind="scan.file", params={"scan_id": scan.id},
                         submitted_by="key:test")
        session.flush()
        job_id = job.id
    summary = _run_job(job_id)
    assert summary["scan_id"] == scan.id and summary["verdict"] == "clean"
    with session_scope() as session:
        row = session.get(ScanResult, scan.id)
        assert row.job_id == job_id and row.status == "complete"


def test_a_deleted_file_fails_alone(sqlite_env):
    submission = _submit([("a.txt", b"alpha\n" * 10), ("b.txt", b"bravo\n" * 10)])
    [(job_id, _)] = submission.jobs
    a = next(s for s in submission.scans if s.filename == "a.txt")
    assert get_store(get_settings()).delete(a.sha256)
    summary = _run_job(job_id)
    assert summary["verdicts"] == {"clean": 1, "failed": 1}
    assert {s["scan_id"]: s.get("error") for s in summary["scans"]}[a.id] == "stored file not found"


@pytest.mark.parametrize("params", [{}, {"scan_id": "x", "sha256": "0" * 64},
                                    {"scan_ids": []}, {"scan_ids": ["x"] * 65},
                                    {"scan_id": "x", "scan_ids": ["y"]}])
def test_scan_file_params_name_exactly_one_target(params):
    from secops.errors import InvalidInput
    from secops.kinds import get_kind

    with pytest.raises(InvalidInput):
        get_kind("scan.file").validate(params)


def test_two_requests_storing_the_same_new_content_at_once_both_succeed(platform_env):
    """Two API processes receive the same new file at the same moment: the second to
    commit finds the first one's ``stored_files`` row, instead of failing on it."""
    import threading
    import time

    from secops.db.models import StoredFile

    def submit(session, name: str) -> scans.Submission:
        settings = get_settings()
        store = get_store(settings)
        return scans.submit_uploads(
            session=session, store=store, staged=[_blob(store, name, b"same new content")],
            submitted_by="key:test", rescan=False,
            ruleset_version=scans.get_scanner(settings).ruleset_version, audit_ctx=CTX,
            job_max_files=32, job_max_bytes=1 << 20)

    errors: list[BaseException] = []

    def second() -> None:
        try:
            with session_scope() as session:
                submit(session, "b.txt")
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    with session_scope() as first:
        submit(first, "a.txt")  # its row is written, not yet committed
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.5)  # the second request reaches its own insert (or its lock) meanwhile
    thread.join(30)
    assert not thread.is_alive() and errors == []
    with session_scope() as session:
        assert len(session.scalars(select(StoredFile)).all()) == 1
        assert {s.filename for s in session.scalars(select(ScanResult))} == {"a.txt", "b.txt"}
