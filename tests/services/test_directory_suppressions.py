"""Scan suppressions apply to directory scans as they do to uploads: by content, and by
the file's path where the suppression has a pattern."""

from __future__ import annotations

from secops.config import get_settings
from secops.db.models import ScanFinding, ScanResult
from secops.db.session import session_scope
from secops.services import directory_scans, scans, suppressions
from secops.services.audit import AuditContext
from tests.scanning.corpus import EICAR


def _scan(root, scanner) -> dict:
    from secops.db.models import Job

    with session_scope() as session:
        job = Job(kind="scan.directory", params={"path": str(root)}, status="running",
                  attempts=1, submitted_by="tests")
        session.add(job)
        session.flush()
        plan = directory_scans.plan_directory_scan(session=session, path=str(root),
                                                   allowed=[root], max_files=100)
        outcomes = directory_scans.execute_directory_scan(plan, scanner=scanner)
        summary, _ = directory_scans.record_directory_scan(session=session, job=job, plan=plan,
                                                           outcomes=outcomes, kv=None)
        verdicts = {row.path.removeprefix(str(root) + "/"): row.verdict for row in
                    session.query(ScanResult).filter(ScanResult.job_id == job.id)}
    return summary | {"by_path": verdicts}


def test_directory_scan_drops_suppressed_findings(sqlite_env, tmp_path):
    root = tmp_path / "watched"
    (root / "fixtures").mkdir(parents=True)
    (root / "fixtures" / "eicar.com").write_bytes(EICAR)
    scanner = scans.get_scanner(get_settings())
    first = _scan(root, scanner)
    assert first["by_path"] == {"fixtures/eicar.com": "malicious"}
    assert "suppressed" not in first

    with session_scope() as session:
        scan_id = first["scan_ids"][0]
        suppressions.suppress_scan_finding(
            session=session, scan_id=scan_id, rule_id=None, path_pattern="*/fixtures/*",
            reason="the antivirus test file our QA keeps", expires_at=None,
            ctx=AuditContext("tests"), kv=None)
        expected_dropped = session.query(ScanFinding).filter(
            ScanFinding.scan_id == scan_id).count()
    assert expected_dropped >= 1

    # the same content under the pattern is clean; elsewhere it is still malicious
    (root / "fixtures" / "copy.com").write_bytes(EICAR)
    (root / "elsewhere.com").write_bytes(EICAR)
    second = _scan(root, scanner)
    assert second["by_path"] == {"fixtures/copy.com": "clean", "elsewhere.com": "malicious"}
    assert second["suppressed"] == expected_dropped
