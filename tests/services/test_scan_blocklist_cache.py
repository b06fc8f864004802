"""A blocklist edit changes the verdict of content already scanned: the verdict cache is
keyed by the rules *and* the blocklists (real database, store and scanner)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from sqlalchemy import select

from secops.config import get_settings
from secops.db.models import Job, ScanResult
from secops.db.session import session_scope
from secops.scanning import ScanConfig, Scanner, Verdict, ruleset_version
from secops.services import scans
from tests.services.test_scan_jobs import _run_job, _submit

CONTENT = b"quarterly figures, nothing to see\n" * 20


def test_scanner_version_covers_blocklists(tmp_path: Path) -> None:
    listed = tmp_path / "bad.sha256"
    listed.write_text("# feed header\n")
    empty = Scanner(ScanConfig(sha256_blocklists=(listed,)))
    assert empty.ruleset_version == ruleset_version()  # nothing listed: the rules alone
    listed.write_text(hashlib.sha256(b"other").hexdigest() + "  other.bin\n")
    one = Scanner(ScanConfig(sha256_blocklists=(listed,)))
    listed.write_text(hashlib.sha256(b"other").hexdigest() + "\n"
                      + hashlib.sha256(CONTENT).hexdigest() + "\n")
    two = Scanner(ScanConfig(sha256_blocklists=(listed,)))
    versions = {empty.ruleset_version, one.ruleset_version, two.ruleset_version}
    assert len(versions) == 3 and all(len(v) == 64 for v in versions)
    result = two.scan_bytes(CONTENT, "figures.txt")
    assert result.verdict is Verdict.MALICIOUS
    assert result.ruleset_version == two.ruleset_version
    # the same digests in another order or file give the same version
    other = tmp_path / "copy.sha256"
    other.write_text(hashlib.sha256(CONTENT).hexdigest().upper() + "\n"
                     + hashlib.sha256(b"other").hexdigest() + "\n")
    assert Scanner(ScanConfig(sha256_blocklists=(other,))).ruleset_version == two.ruleset_version


@pytest.mark.parametrize("platform_env", ["sqlite"], indirect=True)
def test_blocklist_edit_changes_a_cached_verdict(platform_env, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    blocklist = tmp_path / "blocklist.sha256"
    blocklist.write_text("# nothing yet\n")
    monkeypatch.setenv("SECOPS_SCAN_SHA256_BLOCKLISTS", f'["{blocklist}"]')
    get_settings.cache_clear()

    first = _submit([("figures.txt", CONTENT)])
    for job_id, _ in first.jobs:
        _run_job(job_id)
    # the same content again is answered from the cache while nothing changed
    again = _submit([("figures.txt", CONTENT)])
    assert [s.cached for s in again.scans] == [True]

    blocklist.write_text(hashlib.sha256(CONTENT).hexdigest() + "  figures.txt\n")
    stat = blocklist.stat()  # a later mtime even on coarse file-system clocks
    os.utime(blocklist, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    after = _submit([("figures.txt", CONTENT)])
    assert [s.cached for s in after.scans] == [False]
    for job_id, _ in after.jobs:
        _run_job(job_id)
    with session_scope() as session:
        rows = session.scalars(select(ScanResult).order_by(ScanResult.created_at)).all()
        assert [(r.verdict, r.cached) for r in rows] == [
            ("clean", False), ("clean", True), ("malicious", False)]
        assert rows[2].ruleset_version == scans.get_scanner(get_settings()).ruleset_version
        assert rows[2].ruleset_version != rows[0].ruleset_version
        assert session.scalars(select(Job)).all()
