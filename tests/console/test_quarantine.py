"""The console's quarantine decisions on real stored files: two EICAR files go through the
real scan services and the real encrypted store (as the worker runs them) into quarantine;
an administrator releases one and deletes the other from the scans page, an analyst is
refused, and a post without the CSRF token changes nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import select

from secops.config import get_settings
from secops.db.console_models import User
from secops.db.models import AuditEntry, StoredFile
from secops.db.session import session_scope
from secops.services.storage import get_store
from tests.console.conftest import browser, enrol, get_csrf, setup_totp
from tests.scanning.corpus import EICAR
from tests.services.test_scan_jobs import _run_job, _submit

RELEASED = EICAR
DELETED = EICAR + b"   \n"  # the test file followed by whitespace: another malicious file


def files_named(root: Path, name: str) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob(name) if p.is_file())


def state_of(sha256: str) -> str:
    with session_scope() as session:
        return session.get(StoredFile, sha256).state


def user_id(name: str) -> str:
    with session_scope() as session:
        return session.scalars(select(User.id).where(User.name == name)).one()


def quarantine_audit() -> list[tuple[str, str, str]]:
    with session_scope() as session:
        return [(e.actor, e.action, e.target) for e in session.scalars(
            select(AuditEntry).where(AuditEntry.action.like("quarantine.%"))
            .order_by(AuditEntry.seq))]


def test_admin_releases_and_deletes_quarantined_files_analyst_is_refused(app):
    data_dir = Path(get_settings().data_dir).resolve()
    keep, drop = hashlib.sha256(RELEASED).hexdigest(), hashlib.sha256(DELETED).hexdigest()
    submission = _submit([("keep.com", RELEASED), ("drop.com", DELETED)])
    for job_id, _ in submission.jobs:
        _run_job(job_id)
    for sha in (keep, drop):
        assert state_of(sha) == "quarantined"
        assert files_named(data_dir, sha) == [Path("quarantine") / sha[:2] / sha]

    admin = browser(app)
    assert enrol(admin, "root", "admin") == "/console/account/setup"
    setup_totp(admin)
    analyst = browser(app)
    assert enrol(analyst, "ana", "analyst") == "/console/"

    # the analyst sees scans but not the quarantine, and may not decide (permission table:
    # quarantine:manage is the admin's alone)
    page = analyst.get("/console/scans")
    assert page.status_code == 200 and 'id="quarantine"' not in page.text
    csrf = get_csrf(analyst, "/console/scans")
    for decision in ("release", "delete"):
        resp = analyst.post(f"/console/quarantine/{keep}/{decision}", data={"csrf": csrf})
        assert resp.status_code == 403 and "Your role does not allow" in resp.text
    assert state_of(keep) == "quarantined"
    assert files_named(data_dir, keep) == [Path("quarantine") / keep[:2] / keep]

    # the admin's scans page lists both files with a release and a delete form each
    page = admin.get("/console/scans")
    assert page.status_code == 200
    for sha in (keep, drop):
        for decision in ("release", "delete"):
            assert f'action="/console/quarantine/{sha}/{decision}"' in page.text
    csrf = get_csrf(admin, "/console/scans")

    # without the CSRF token (or with a wrong one) nothing happens
    for data in ({}, {"csrf": "x" * 43}):
        resp = admin.post(f"/console/quarantine/{keep}/release", data=data)
        assert resp.status_code == 403 and "cross-site request check failed" in resp.text
    assert state_of(keep) == "quarantined" and quarantine_audit() == []

    # release: out of the quarantine area, back in the store, readable, audited
    resp = admin.post(f"/console/quarantine/{keep}/release", data={"csrf": csrf})
    assert resp.status_code == 303 and resp.headers["location"] == "/console/scans"
    assert state_of(keep) == "released"
    assert files_named(data_dir, keep) == [Path("blobs") / keep[:2] / keep]
    store = get_store(get_settings())
    assert store.read(keep) == RELEASED
    # a second release of the same file is a conflict and changes nothing
    resp = admin.post(f"/console/quarantine/{keep}/release", data={"csrf": csrf})
    assert resp.status_code == 409 and "not quarantined (it is released)" in resp.text

    # delete: the content is gone from disk and from the store, the record stays
    resp = admin.post(f"/console/quarantine/{drop}/delete", data={"csrf": csrf})
    assert resp.status_code == 303 and resp.headers["location"] == "/console/scans"
    assert state_of(drop) == "deleted"
    assert files_named(data_dir, drop) == []
    assert store.locate(drop) is None

    root = f"user:{user_id('root')}"
    assert quarantine_audit() == [(root, "quarantine.release", f"file:{keep}"),
                                  (root, "quarantine.delete", f"file:{drop}")]
    page = admin.get("/console/scans")
    assert "Nothing in quarantine." in page.text
    assert "/console/quarantine/" not in page.text
    # an unknown decision or a malformed name is refused
    resp = admin.post(f"/console/quarantine/{keep}/purge", data={"csrf": csrf})
    assert resp.status_code == 400 and "unknown decision or file" in resp.text
