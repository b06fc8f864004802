"""Retention and uploads of the same content, interleaved step by step on SQLite and
PostgreSQL: a committed row never names stored content that is gone, and retention
removes only content no row names.

The upload and the remover run in threads; a store that pauses the upload right after
its files are placed (the one point where the race was lost) and events put each side's
steps in the order under test. The oracle is the store itself: every committed row's
content is read back with ``BlobStore.read``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from secops.config import get_settings
from secops.db.models import DlpScan, ScanResult, StoredFile
from secops.db.session import get_sessionmaker, session_scope
from secops.errors import NotFound
from secops.services import dlp, quarantine, retention, scans
from secops.services.audit import AuditContext
from secops.services.storage import BlobStore, StagedBlob, storage_key
from tests.factories import stored_file

OLD = timedelta(days=400)
CTX = AuditContext(actor="key:test")
WAIT = 30.0

pytestmark = pytest.mark.usefixtures("platform_env")


class PausingStore(BlobStore):
    """The real store, which stops after placing an upload's files until told to go on."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.placed = threading.Event()
        self.go = threading.Event()

    def commit_all(self, staged: list[StagedBlob], **kwargs: Any) -> list[str]:
        out = super().commit_all(staged, **kwargs)
        self.placed.set()
        assert self.go.wait(WAIT)
        return out


def _store(cls: type[BlobStore] = BlobStore) -> Any:
    settings = get_settings()
    return cls(settings.data_dir.resolve(), storage_key(settings))


def _old_file(data: bytes, state: str = "stored") -> str:
    return stored_file(_store(), data, state=state, age=OLD)


def _upload_scan(session, store: BlobStore, staged: StagedBlob) -> None:
    scans.submit_uploads(session=session, store=store, staged=[staged], submitted_by="key:test",
                         rescan=False, ruleset_version="test-rules", audit_ctx=CTX,
                         job_max_files=10, job_max_bytes=1 << 20)


def _upload_dlp(session, store: BlobStore, staged: StagedBlob) -> None:
    dlp.submit_upload(session=session, store=store, staged=staged, submitted_by="key:test")


def _in_thread(fn: Callable[[], object]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def _upload_in_thread(store: BlobStore, data: bytes,
                      submit: Callable[..., None]) -> tuple[threading.Thread, list[BaseException]]:
    def upload() -> None:
        session = get_sessionmaker()()
        try:
            submit(session, store, store.stage_bytes(data, "again.bin"))
            session.commit()
        finally:
            session.close()

    return _in_thread(upload)


def _row_exists(sha: str) -> bool:
    with session_scope() as s:
        return s.get(StoredFile, sha) is not None


def _every_named_content_is_readable() -> set[str]:
    """The oracle: each content a committed row names reads back; returns them."""
    with session_scope() as s:
        named = set(s.scalars(select(StoredFile.sha256).where(StoredFile.state != "deleted")))
        named |= set(s.scalars(select(ScanResult.sha256)))
        named |= {sha for sha in s.scalars(select(DlpScan.sha256)) if sha is not None}
    store = _store()
    for sha in named:
        store.read(sha)  # NotFound if the content is gone
    return named


def _ended_with_the_content_kept(thread: threading.Thread, errors: list[Any], sha: str) -> None:
    """The other side finished without error; every content a row names is readable and
    ``sha``'s row says it is stored."""
    thread.join(WAIT)
    assert not thread.is_alive() and errors == []
    assert _every_named_content_is_readable() == {sha}
    with session_scope() as s:
        assert s.get(StoredFile, sha).state == "stored"


@pytest.mark.parametrize("submit", [_upload_scan, _upload_dlp], ids=["scan", "dlp"])
def test_an_upload_placed_before_retention_removes_the_file_puts_it_back(submit):
    """Retention deletes the old row and removes the file after the upload found the
    file in place and before the upload commits its rows: the upload puts it back."""
    data = b"old content, uploaded again while retention runs"
    sha = _old_file(data)
    store = _store(PausingStore)
    thread, errors = _upload_in_thread(store, data, submit)
    assert store.placed.wait(WAIT)  # the upload reused the stored file, rows not yet written

    from tasks.system import prune

    assert prune()["deleted"]["files"] == 1  # the row goes; the content, for now, too
    with pytest.raises(NotFound):
        store.read(sha)
    store.go.set()
    _ended_with_the_content_kept(thread, errors, sha)
    assert store.read(sha) == data
    assert list((store.root / "tmp").iterdir()) == []  # the kept copy went into place


def test_retention_waits_for_an_upload_holding_the_content_and_then_keeps_it():
    """The upload has taken the content (its rows are written, not committed) when
    retention comes to remove the file: retention waits, sees the rows, keeps it."""
    data = b"old content, its upload commits first"
    sha = _old_file(data)
    with session_scope() as s:
        result = retention.prune(session=s, settings=get_settings())
    assert result.files_to_remove == [sha]
    store = _store()
    session = get_sessionmaker()()
    try:
        _upload_scan(session, store, store.stage_bytes(data, "again.bin"))
        remover, errors = _in_thread(
            lambda: retention.remove_files(store=store, sha256s=result.files_to_remove))
        remover.join(0.5)
        assert remover.is_alive()  # it waits for the upload's transaction
        assert store.read(sha) == data
        session.commit()
    finally:
        session.close()
    _ended_with_the_content_kept(remover, errors, sha)


def test_an_upload_that_found_the_row_before_retention_deleted_it_keeps_both():
    """The upload read the content's row (so writes none) before retention deleted it:
    on PostgreSQL retention's delete does not wait for it, and the remover restores the
    row; on SQLite retention waits for the upload's transaction. Either way the row,
    the scan and the file are there."""
    data = b"old content, its row read by the upload"
    sha = _old_file(data)
    store = _store()
    session = get_sessionmaker()()
    try:
        _upload_scan(session, store, store.stage_bytes(data, "again.bin"))
        results: list[int] = []

        def prune() -> None:  # the task's steps (its audit record waits for the upload's)
            with session_scope() as s:
                result = retention.prune(session=s, settings=get_settings())
            results.append(result.counts["files"])
            retention.remove_files(store=store, sha256s=result.files_to_remove)

        pruning, errors = _in_thread(prune)
        postgres = session.get_bind().dialect.name == "postgresql"
        if postgres:  # retention's delete of the row commits while the upload is open
            deadline = time.monotonic() + WAIT
            while _row_exists(sha):
                assert time.monotonic() < deadline and pruning.is_alive()
                time.sleep(0.01)
        else:  # retention waits for the upload's transaction
            pruning.join(0.5)
            assert pruning.is_alive()
        session.commit()
    finally:
        session.close()
    pruning.join(WAIT)
    assert not pruning.is_alive() and errors == []
    # PostgreSQL: the row was deleted (the scan was not committed yet), then restored
    assert results == [1 if postgres else 0]
    assert _every_named_content_is_readable() == {sha}
    with session_scope() as s:
        row = s.get(StoredFile, sha)
        assert row is not None and row.state == "stored" and row.size == len(data)


def test_an_upload_of_content_an_admin_deletes_meanwhile_keeps_it():
    """An administrator deletes a quarantined file (the row says ``deleted``) while the
    same content is uploaded: the upload stores it again, and its file stays."""
    data = b"quarantined content, uploaded again"
    sha = _old_file(data, state="quarantined")
    with session_scope() as s:
        quarantine.delete(session=s, sha256=sha, ctx=CTX)
    store = _store(PausingStore)
    thread, errors = _upload_in_thread(store, data, _upload_scan)
    assert store.placed.wait(WAIT)
    with session_scope() as s:
        row = s.get(StoredFile, sha)
        quarantine.apply_decision(session=s, store=store, row=row)
    with pytest.raises(NotFound):
        store.read(sha)
    store.go.set()
    _ended_with_the_content_kept(thread, errors, sha)


def test_without_a_race_retention_removes_old_unnamed_content_and_holds_protect():
    gone, held = _old_file(b"old and unnamed"), _old_file(b"old, under legal hold")
    fresh = _store()
    staged = fresh.stage_bytes(b"recent", "r.bin")
    fresh.commit(staged)
    with session_scope() as s:
        s.add(StoredFile(sha256=staged.sha256, size=6, state="stored"))
        retention.place_hold(session=s, sha256=held, reason="case 7", ctx=CTX)

    from tasks.system import prune

    assert prune()["deleted"]["files"] == 1
    store = _store()
    with pytest.raises(NotFound):
        store.read(gone)
    assert store.read(held) == b"old, under legal hold" and store.read(staged.sha256) == b"recent"
    with session_scope() as s:
        assert set(s.scalars(select(StoredFile.sha256))) == {held, staged.sha256}
    # a removal asked again for content a row names now leaves it
    with session_scope() as s:
        assert retention.still_needed(s, [held, staged.sha256, gone]) == {held, staged.sha256}
    assert retention.remove_files(store=store, sha256s=[held, staged.sha256]) == 0
    assert store.read(held) and store.read(staged.sha256)


@pytest.mark.parametrize("end", ["commit", "rollback", "close"])
def test_the_kept_copy_goes_when_the_transaction_ends(end):
    """However the upload's transaction ends, its copy of content already stored is
    given up (a spare staging file, unlocked), and the stored file stays."""
    data = b"stored before, uploaded again"
    sha = _old_file(data)
    store = _store()
    staged = store.stage_bytes(data, "again.bin")
    session = get_sessionmaker()()
    _upload_scan(session, store, staged)
    assert staged.kept and staged.temp_path is not None and not staged._handle.closed
    getattr(session, end)()
    session.close()
    assert not staged.kept and staged.temp_path is None and staged._handle.closed
    assert [p.name for p in (store.root / "tmp").iterdir()] == [p.name for p in store._spares]
    assert store.read(sha) == data


def test_the_prune_command_removes_old_unnamed_content_and_keeps_named_content():
    from click.testing import CliRunner

    from secops.cli.retention import prune

    gone = _old_file(b"old and unnamed, pruned from the command line")
    held = _old_file(b"old, held, pruned from the command line")
    with session_scope() as s:
        retention.place_hold(session=s, sha256=held, reason="case 8", ctx=CTX)
    out = CliRunner().invoke(prune, [])
    assert out.exit_code == 0, out.output
    assert '"files": 1' in out.output
    store = _store()
    with pytest.raises(NotFound):
        store.read(gone)
    assert store.read(held) == b"old, held, pruned from the command line"
