"""The audit hash chain on SQLite and PostgreSQL: tampering in SQL is caught, appends
never fork, archiving keeps the chain verifiable."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import text

from secops.db.base import utcnow
from secops.db.session import session_scope
from secops.errors import Conflict
from secops.services import audit
from secops.services.audit import AuditContext


def append(n: int, actor: str = "key:test") -> None:
    for i in range(n):
        with session_scope() as s:
            audit.record(session=s, ctx=AuditContext(actor, f"req{i}", "10.0.0.1"),
                         action="jobs.submit", target=f"job:{i}", details={"i": i, "n": [1, 2]})


def verify() -> audit.VerifyResult:
    with session_scope() as s:
        return audit.verify(session=s)


def sql(statement: str, **params) -> None:
    with session_scope() as s:
        s.execute(text(statement), params)


def test_intact_chain_verifies(platform_env):
    append(5)
    result = verify()
    assert result.ok and result.checked == 5 and result.head_seq == 5


@pytest.mark.parametrize(
    ("tamper", "broken_at"),
    [
        ("UPDATE audit_log SET actor = 'key:someone-else' WHERE seq = 3", 3),
        ("UPDATE audit_log SET details = '{\"i\": 99}' WHERE seq = 2", 2),
        ("UPDATE audit_log SET created_at = created_at - INTERVAL '1 hour' WHERE seq = 4", 4),
        ("DELETE FROM audit_log WHERE seq = 3", 3),
        ("DELETE FROM audit_log WHERE seq >= 5", 5),  # tail cut off
        ("DELETE FROM audit_log WHERE seq = 1", 1),
    ],
)
def test_tampering_is_caught(platform_env, tamper, broken_at):
    append(6)
    if "INTERVAL" in tamper and platform_env["SECOPS_DATABASE_URL"].startswith("sqlite"):
        tamper = "UPDATE audit_log SET created_at = datetime(created_at, '-1 hour') WHERE seq = 4"
    sql(tamper)
    result = verify()
    assert not result.ok and result.first_broken is not None
    assert result.first_broken.seq == broken_at, result.first_broken


def test_reordering_is_caught(platform_env):
    append(5)
    # swap entries 2 and 3 (positions) keeping their own hashes: links break at 2
    sql("UPDATE audit_log SET seq = 1000 WHERE seq = 2")
    sql("UPDATE audit_log SET seq = 2 WHERE seq = 3")
    sql("UPDATE audit_log SET seq = 3 WHERE seq = 1000")
    result = verify()
    assert not result.ok and result.first_broken.seq == 2


def test_insertion_is_caught(platform_env):
    append(4)
    with session_scope() as s:
        sealed = s.execute(text("SELECT mac FROM audit_chain_head")).scalar_one()
    # a forged entry at the end, linked correctly, head moved: its hash cannot be right
    sql("INSERT INTO audit_log (seq, created_at, actor, action, target, request_id, client_ip,"
        " details, prev_hash, hash) SELECT 5, created_at, 'key:attacker', 'keys.create',"
        " 'key:x', NULL, NULL, details, hash, :fake FROM audit_log WHERE seq = 4", fake="f" * 64)
    sql("UPDATE audit_chain_head SET last_seq = 5, last_hash = :fake", fake="f" * 64)
    result = verify()
    assert not result.ok and result.first_broken.seq == 5
    assert "hash" in result.first_broken.reason
    # and an entry slipped into the middle by renumbering the rest
    sql("DELETE FROM audit_log WHERE seq = 5")
    sql("UPDATE audit_chain_head SET last_seq = 4, last_hash = "
        "(SELECT hash FROM audit_log WHERE seq = 4), mac = :mac", mac=sealed)
    assert verify().ok  # the genuine earlier head, restored with its MAC
    for seq in (4, 3):
        sql("UPDATE audit_log SET seq = :new WHERE seq = :old", new=seq + 1, old=seq)
    sql("INSERT INTO audit_log (seq, created_at, actor, action, target, request_id, client_ip,"
        " details, prev_hash, hash) SELECT 3, created_at, actor, action, target, request_id,"
        " client_ip, details, hash, hash FROM audit_log WHERE seq = 2")
    result = verify()
    assert not result.ok and result.first_broken.seq == 3


def test_concurrent_appends_never_fork_the_chain(platform_env):
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            append(10, actor=f"key:{name}")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    result = verify()
    assert result.ok and result.checked == 60 and result.head_seq == 60


@pytest.mark.postgres
@pytest.mark.parametrize("platform_env", ["postgresql"], indirect=True)
def test_first_append_racing_the_first_commit_finds_the_new_head(platform_env):
    """PostgreSQL (SQLite serialises writers before the read): writer B reads no head
    while writer A's first entry is uncommitted; A commits before B looks for entries.
    B must lock A's head, not report it missing."""
    from sqlalchemy import event

    from secops.db.session import get_engine

    b_read_head, a_committed = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def pause_after_head_read(conn, cursor, statement, *args) -> None:
        if threading.current_thread().name == "writer-b" and "audit_chain_head" in statement \
                and not b_read_head.is_set():
            b_read_head.set()
            a_committed.wait(10)

    engine = get_engine()
    event.listen(engine, "after_cursor_execute", pause_after_head_read)
    try:
        def writer_b() -> None:
            try:
                append(1, actor="key:b")
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        with session_scope() as a:
            audit.record(session=a, ctx=AuditContext("key:a"), action="jobs.submit",
                         target="job:a")
            b = threading.Thread(target=writer_b, name="writer-b")
            b.start()
            assert b_read_head.wait(10)
        a_committed.set()
        b.join(20)
    finally:
        event.remove(engine, "after_cursor_execute", pause_after_head_read)
    assert errors == []
    result = verify()
    assert result.ok and result.checked == 2 and result.head_seq == 2


def test_archive_prunes_and_keeps_the_chain_verifiable(platform_env, tmp_path):
    append(8)
    cutoff = utcnow() + timedelta(seconds=1)
    with session_scope() as s:
        done = audit.archive_and_prune(session=s, before=cutoff, archive_dir=tmp_path)
    assert done is not None and done.archived == 8 and done.through_seq == 8
    lines = (tmp_path / done.archive.rsplit("/", 1)[1]).read_text().splitlines()
    assert len(lines) == 8
    append(3)  # the chain continues after the checkpoint
    result = verify()
    assert result.ok and result.checked == 3 and result.head_seq == 11
    # a forged checkpoint is caught
    sql("UPDATE audit_checkpoints SET through_seq = 7")
    assert not verify().ok
    sql("UPDATE audit_checkpoints SET through_seq = 8")
    assert verify().ok
    # deleting the checkpoint exposes the pruned gap
    sql("DELETE FROM audit_checkpoints")
    assert verify().first_broken.seq == 1


def test_archive_refuses_a_broken_chain(sqlite_env, tmp_path):
    append(3)
    sql("UPDATE audit_log SET target = 'job:other' WHERE seq = 2")
    with session_scope() as s, pytest.raises(Conflict):
        audit.archive_and_prune(session=s, before=utcnow() + timedelta(days=1),
                                archive_dir=tmp_path / "archive")
    assert not (tmp_path / "archive").exists()


def test_csv_export_neutralises_formulas(sqlite_env):
    with session_scope() as s:
        audit.record(session=s, ctx=AuditContext("=cmd|' /C calc'!A0"), action="x",
                     target="+1", details={})
    with session_scope() as s:
        out = "".join(audit.export(session=s, fmt="csv"))
    assert "'=cmd" in out and ",'+1," in out


def test_export_pages_cover_every_entry_once(sqlite_env, monkeypatch):
    monkeypatch.setattr(audit, "BATCH", 2)
    append(5)
    with session_scope() as s:
        jsonl = "".join(audit.export(session=s, fmt="jsonl")).splitlines()
        rows = "".join(audit.export(session=s, fmt="csv")).splitlines()
    assert [__import__("json").loads(line)["seq"] for line in jsonl] == [1, 2, 3, 4, 5]
    assert rows[0].startswith("seq,time,actor") and len(rows) == 6
    assert verify().ok  # verification pages too
