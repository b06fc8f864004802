"""The tamper-evident audit log: an HMAC-SHA256 hash chain in one append-only table.

Every entry stores its position ``seq``, the previous entry's hash and its own hash,
HMAC-SHA256(``audit_hmac`` secret, canonical JSON of every field including the previous
hash). Whoever can write to the database but does not hold the key cannot edit an entry
(its hash no longer matches), delete one (a gap in ``seq`` and a broken link), insert one
(no valid hash) or reorder entries (links break) without :func:`verify` naming the first
broken link. The chain head row (id 1) holds the tail's ``seq`` and hash; every append
locks it (``SELECT ... FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so
concurrent writers can never fork the chain, and verification notices entries cut off
the end while the head still names them.

Retention archives the oldest entries to a JSON-lines file and prunes them, leaving a
checkpoint row (MAC'd with the same key) that holds the hash of the last pruned entry:
verification then starts from the checkpoint.

The head row carries a MAC of its ``(seq, hash)``, so deleting the newest entries and
rewinding the head by hand no longer verifies; a head row that disappears is never
rebuilt while entries exist (appends are refused with :class:`AuditChainBroken` until an
administrator looks). A rewind to an earlier, genuine head (row and MAC copied from a
backup) is caught by the outside anchor: every verification appends the ``(seq, hash)`` it
verified to ``SECOPS_AUDIT_ANCHOR_FILE`` (kept off the data directory), and the next one
fails if the chain now ends before, or differs at, the anchored entry.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import hmac
import io
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Connection,
    Table,
    bindparam,
    delete,
    exists,
    func,
    insert,
    select,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from secops.config import get_settings
from secops.db.base import utcnow
from secops.db.models import AuditChainHead, AuditCheckpoint, AuditEntry
from secops.errors import AuditChainBroken, Conflict, InvalidInput

GENESIS = "0" * 64
HEAD_ID = 1
BATCH = 1000
EXPORT_FIELDS = ("seq", "time", "actor", "action", "target", "request_id", "client_ip",
                 "details", "prev_hash", "hash")


@dataclass(frozen=True)
class AuditContext:
    """Who did it and from where: the request's principal, request id and client IP."""

    actor: str
    request_id: str | None = None
    client_ip: str | None = None


@dataclass(frozen=True)
class BrokenLink:
    seq: int
    reason: str


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    head_seq: int
    head_hash: str
    first_broken: BrokenLink | None = None

    def as_dict(self) -> dict[str, Any]:
        broken = self.first_broken
        return {"ok": self.ok, "checked": self.checked, "head_seq": self.head_seq,
                "head_hash": self.head_hash,
                "first_broken": None if broken is None else {"seq": broken.seq,
                                                             "reason": broken.reason}}


def _key() -> bytes:
    return get_settings().secret("audit_hmac").get_secret_value().encode()


def _time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _mac(key: bytes, fields: list[Any]) -> str:
    data = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, data.encode(), hashlib.sha256).hexdigest()


def _entry_middle(created: datetime, actor: str, action: str, target: str,
                  request_id: str | None, client_ip: str | None, details: Any) -> str:
    """An entry's MAC'd fields between ``seq`` and ``prev_hash``, serialised as
    :func:`_mac` serialises them (so :func:`record` prepares them before the lock)."""
    return json.dumps([_time(created), actor, action, target, request_id, client_ip, details],
                      sort_keys=True, separators=(",", ":"))[1:-1]


def _entry_mac(key: bytes, seq: int, middle: str, prev_hash: str | None) -> str:
    """:func:`_mac` of ``[seq, *middle, prev_hash]``."""
    return hmac.new(key, f"[{seq},{middle},{json.dumps(prev_hash)}]".encode(),
                    hashlib.sha256).hexdigest()


def entry_hash(key: bytes, entry: AuditEntry) -> str:
    middle = _entry_middle(entry.created_at, entry.actor, entry.action, entry.target,
                           entry.request_id, entry.client_ip, entry.details)
    return _entry_mac(key, entry.seq, middle, entry.prev_hash)


def checkpoint_mac(key: bytes, cp: AuditCheckpoint) -> str:
    return _mac(key, ["checkpoint", cp.through_seq, cp.last_hash, cp.archived_count, cp.archive])


def head_mac(key: bytes, seq: int, last_hash: str) -> str:
    return _mac(key, ["head", seq, last_hash])


_HEAD = cast(Table, AuditChainHead.__table__)
_ENTRIES = cast(Table, AuditEntry.__table__)
# Built once: record() runs them while holding the head's lock.
_LOCK_HEAD = (select(_HEAD.c.last_seq, _HEAD.c.last_hash)
              .where(_HEAD.c.id == HEAD_ID).with_for_update())
_INSERT_ENTRY = insert(_ENTRIES).values(
    seq=bindparam("b_seq"), created_at=bindparam("b_created"), actor=bindparam("b_actor"),
    action=bindparam("b_action"), target=bindparam("b_target"),
    request_id=bindparam("b_request_id"), client_ip=bindparam("b_client_ip"),
    details=bindparam("b_details"), prev_hash=bindparam("b_prev"), hash=bindparam("b_hash"))
_UPDATE_HEAD = update(_HEAD).where(_HEAD.c.id == HEAD_ID).values(
    last_seq=bindparam("b_seq"), last_hash=bindparam("b_hash"), mac=bindparam("b_mac"))
# PostgreSQL: the entry's insert and the head's update in one statement (one round trip
# while the lock is held).
_APPEND_PG = _UPDATE_HEAD.add_cte(_INSERT_ENTRY.cte("appended"))
# An entry's columns and the names of their values in record_many.
_ENTRY_COLUMNS = (("seq", "seq"), ("created_at", "created"), ("actor", "actor"),
                  ("action", "action"), ("target", "target"), ("request_id", "request_id"),
                  ("client_ip", "client_ip"), ("details", "details"), ("prev_hash", "prev"),
                  ("hash", "hash"))


def _typed_bind(table: Table, column: str, name: str) -> Any:
    """A value for ``column``, typed by it (the values of ``INSERT ... SELECT`` are not
    typed by the columns they go to); None in a JSON column is SQL NULL."""
    kind = table.c[column].type
    return bindparam(name, type_=JSON(none_as_null=True) if isinstance(kind, JSON) else kind)


@functools.lru_cache(maxsize=32)
def _insert_rows(table: Table, columns: tuple[str, ...]) -> Any:
    """An insert of ``columns`` into ``table``, each bound as ``v_{column}``."""
    return insert(table).values({c: _typed_bind(table, c, f"v_{c}") for c in columns})


def _insert_select(table: Table, columns: Sequence[tuple[str, str]], count: int,
                   prefix: str) -> Any:
    """An insert of ``count`` rows of ``columns`` (column, bound name) into ``table``, the
    i-th row's values bound as ``{prefix}{i}_{name}``: ``INSERT ... SELECT ... UNION ALL
    SELECT ...``, which SQLAlchemy compiles once and caches (it compiles a multi-row
    ``VALUES`` anew at every execution)."""
    rows = [select(*[_typed_bind(table, column, f"{prefix}{i}_{name}").label(column)
                     for column, name in columns]) for i in range(count)]
    return insert(table).from_select([column for column, _ in columns],
                                     rows[0] if count == 1 else union_all(*rows))


@functools.lru_cache(maxsize=128)
def _append_many_pg(entries: int, rows: tuple[tuple[Table, tuple[str, ...], int], ...]
                    ) -> Any:
    """PostgreSQL: ``entries`` entries' insert, the inserts of ``rows`` (per table: its
    columns and how many rows) and the head's update, as one statement. Values are bound
    by name: ``e{i}_{name}`` for the i-th entry, ``r{t}_{i}_{column}`` for the rest.
    Built once per shape, and compiled once per shape by the engine's compiled cache
    (building and compiling it costs more than running it)."""
    ctes = [_insert_select(table, [(c, c) for c in columns], count, f"r{t}_").cte(f"rows_{t}")
            for t, (table, columns, count) in enumerate(rows)]
    ctes.append(_insert_select(_ENTRIES, _ENTRY_COLUMNS, entries, "e").cte("appended"))
    return _UPDATE_HEAD.add_cte(*ctes)


def _lock_head(session: Session) -> AuditChainHead:
    """The chain head, locked for this transaction; created only for an empty log.

    A missing head with entries or checkpoints present is tampering (or a bad restore):
    rebuilding it from the tail would bless whatever the tail now is, so appends are
    refused instead and the caller reports it."""
    head = _select_head(session)
    if head is not None:
        return head
    if session.scalar(select(exists().where(AuditEntry.seq > 0))) \
            or _latest_checkpoint(session) is not None:
        # Under READ COMMITTED the first writer's head row is invisible until it commits,
        # and its entries become visible with the same commit: look again before calling
        # the head missing.
        head = _select_head(session)
        if head is not None:
            return head
        raise AuditChainBroken("the audit log's chain head is missing; audited actions are "
                               "refused until an administrator restores it")
    try:
        with session.begin_nested():
            session.add(AuditChainHead(id=HEAD_ID, last_seq=0, last_hash=GENESIS,
                                       mac=head_mac(_key(), 0, GENESIS)))
    except IntegrityError:
        pass  # created concurrently: lock theirs
    head = _select_head(session)
    assert head is not None
    return head


def _select_head(session: Session) -> AuditChainHead | None:
    return session.scalar(
        select(AuditChainHead).where(AuditChainHead.id == HEAD_ID).with_for_update()
    )


def record(
    *, session: Session, ctx: AuditContext, action: str, target: str,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry in the caller's transaction (it commits with the change it records).

    The head stays locked until that commit, and every concurrent append waits for it, so
    callers record the entry last, just before they commit. The lock is held for two
    statements: the head's locking read, then the entry's insert together with the head's
    update (one statement on PostgreSQL); everything else is prepared before it.
    """
    return record_many(session=session, entries=[(ctx, action, target, details)])[0]


def record_many(
    *, session: Session,
    entries: Sequence[tuple[AuditContext, str, str, dict[str, Any] | None]],
    rows: Sequence[tuple[Table, Sequence[dict[str, Any]]]] = (),
) -> list[AuditEntry]:
    """What :func:`record` does for each ``(ctx, action, target, details)``, in order,
    under one lock of the head: the entries take consecutive positions, each linked to
    the one before, and are written with the head's update in one statement on
    PostgreSQL (two on SQLite).

    ``rows`` are rows of other tables (per table, dicts by column name, every row with
    the same columns) that the entries record: on PostgreSQL they are inserted in that
    same statement (one round trip, under the lock), elsewhere just before the lock.

    Like :func:`record`, it appends in the caller's transaction: the caller commits,
    and the head stays locked until then."""
    key = _key()
    session.flush()  # the caller's pending rows go first, outside the head's lock
    values_list: list[dict[str, Any]] = []
    middles: list[str] = []
    for ctx, action, target, details in entries:
        clean = json.loads(json.dumps(details or {}, default=str, sort_keys=True))
        created = utcnow()
        values = {"b_created": created, "b_actor": ctx.actor[:120], "b_action": action[:64],
                  "b_target": target[:200], "b_request_id": ctx.request_id,
                  "b_client_ip": ctx.client_ip, "b_details": clean}
        values_list.append(values)
        middles.append(_entry_middle(created, values["b_actor"], values["b_action"],
                                     values["b_target"], ctx.request_id, ctx.client_ip, clean))
    if not values_list:
        return []
    conn = session.connection()
    postgres = conn.dialect.name == "postgresql"
    if not postgres:
        for table, table_rows in rows:
            if table_rows:
                conn.execute(_insert_rows(table, tuple(table_rows[0])),
                             [{f"v_{c}": v for c, v in row.items()} for row in table_rows])
    head = conn.execute(_LOCK_HEAD).first()
    _append(session, conn, key, head, values_list, middles,
            [(table, list(table_rows)) for table, table_rows in rows if table_rows])
    loaded = session.identity_map.get(session.identity_key(AuditChainHead, HEAD_ID))
    if loaded is not None:
        session.expire(loaded)  # the session's copy of the head row is now stale
    return [AuditEntry(seq=v["b_seq"], created_at=v["b_created"], actor=v["b_actor"],
                       action=v["b_action"], target=v["b_target"],
                       request_id=v["b_request_id"], client_ip=v["b_client_ip"],
                       details=v["b_details"], prev_hash=v["b_prev"], hash=v["b_hash"])
            for v in values_list]


def _append(session: Session, conn: Connection, key: bytes, head: Any,
            values_list: list[dict[str, Any]], middles: list[str],
            others: list[tuple[Table, list[dict[str, Any]]]]) -> None:
    """Chain the entries after ``head`` (the locked head's seq and hash, None when there
    is no head row yet) and write them, ``others`` and the head's update."""
    if head is None:
        created_head = _lock_head(session)
        last_seq, last_hash = created_head.last_seq, created_head.last_hash
    else:
        last_seq, last_hash = head
    for values, middle in zip(values_list, middles, strict=True):
        last_seq += 1
        digest = _entry_mac(key, last_seq, middle, last_hash)
        values.update(b_seq=last_seq, b_prev=last_hash, b_hash=digest)
        last_hash = digest
    head_values = {"b_seq": last_seq, "b_hash": last_hash,
                   "b_mac": head_mac(key, last_seq, last_hash)}
    if conn.dialect.name != "postgresql":
        conn.execute(_INSERT_ENTRY, values_list)
        conn.execute(_UPDATE_HEAD, head_values)
    elif len(values_list) == 1 and not others:
        conn.execute(_APPEND_PG, {**values_list[0], **head_values})
    else:
        bound = dict(head_values)
        for i, values in enumerate(values_list):
            bound.update((f"e{i}_{name}", values[f"b_{name}"]) for _, name in _ENTRY_COLUMNS)
        for t, (_, table_rows) in enumerate(others):
            for i, row in enumerate(table_rows):
                bound.update((f"r{t}_{i}_{column}", value) for column, value in row.items())
        shape = tuple((table, tuple(table_rows[0]), len(table_rows))
                      for table, table_rows in others)
        conn.execute(_append_many_pg(len(values_list), shape), bound)


def _latest_checkpoint(session: Session) -> AuditCheckpoint | None:
    return session.scalar(
        select(AuditCheckpoint).order_by(AuditCheckpoint.through_seq.desc()).limit(1)
    )


def verify(*, session: Session, release: bool = False,
           anchor: Anchor | None = None) -> VerifyResult:
    """Walk the chain from the last checkpoint (or the start) up to the head as it was
    when the walk began, and report the first broken link.

    ``release`` ends the session's transaction after each batch of entries (a read
    session: no snapshot or SQLite lock held for the whole walk); entries appended
    meanwhile are left for the next run. ``anchor`` is the last (seq, hash) an earlier
    verification saw: the chain must still reach it, unchanged.
    """
    key = _key()
    head = session.get(AuditChainHead, HEAD_ID)
    has_head = head is not None
    head_seq, head_hash = (head.last_seq, head.last_hash) if head else (0, GENESIS)
    head_sealed = head is not None and head.mac is not None and hmac.compare_digest(
        head.mac, head_mac(key, head.last_seq, head.last_hash))
    until = head_seq if has_head else None  # without a head: every entry there is
    cp = _latest_checkpoint(session)
    expected_seq, expected_prev = 1, GENESIS
    if cp is not None:
        if not hmac.compare_digest(cp.mac, checkpoint_mac(key, cp)):
            return VerifyResult(False, 0, head_seq, head_hash,
                                BrokenLink(cp.through_seq, "archive checkpoint was altered"))
        expected_seq, expected_prev = cp.through_seq + 1, cp.last_hash
    cp_seq = cp.through_seq if cp is not None else None
    if release:
        session.rollback()
    checked = 0
    after = expected_seq - 1
    anchored: str | None = None
    if anchor is not None and anchor.seq == 0:
        anchored = GENESIS
    elif anchor is not None and cp_seq is not None and anchor.seq == cp_seq:
        anchored = expected_prev  # the checkpoint's last hash
    while True:
        query = select(AuditEntry).where(AuditEntry.seq > after)
        if until is not None:
            query = query.where(AuditEntry.seq <= until)
        rows = session.scalars(query.order_by(AuditEntry.seq).limit(BATCH)).all()
        for entry in rows:
            broken = _check(key, entry, expected_seq, expected_prev)
            if broken is not None:
                return VerifyResult(False, checked, head_seq, head_hash, broken)
            checked += 1
            expected_seq, expected_prev = entry.seq + 1, entry.hash
            if anchor is not None and entry.seq == anchor.seq:
                anchored = entry.hash
        if release:
            session.rollback()
        if len(rows) < BATCH:
            break
        after = rows[-1].seq
    if not has_head and expected_seq > 1:
        return VerifyResult(False, checked, head_seq, head_hash,
                            BrokenLink(expected_seq - 1, "chain head row is missing"))
    if has_head and (head_seq != expected_seq - 1 or head_hash != expected_prev):
        return VerifyResult(False, checked, head_seq, head_hash,
                            BrokenLink(expected_seq, "entries at the end of the chain are "
                                       f"missing (the head names entry {head_seq})"))
    if has_head and not head_sealed and head_seq > 0:
        return VerifyResult(False, checked, head_seq, head_hash,
                            BrokenLink(head_seq, "the chain head's MAC does not match "
                                       "(the head row was rewritten)"))
    if anchor is not None and (cp_seq is None or anchor.seq > cp_seq or anchored):
        if anchor.seq > head_seq:
            return VerifyResult(False, checked, head_seq, head_hash, BrokenLink(
                head_seq + 1, f"the chain ends at entry {head_seq}, but a verification "
                f"anchored entry {anchor.seq}: newer entries were cut off"))
        if anchored is None or not hmac.compare_digest(anchored, anchor.hash):
            return VerifyResult(False, checked, head_seq, head_hash, BrokenLink(
                anchor.seq, "differs from the hash an earlier verification anchored"))
    return VerifyResult(True, checked, head_seq, head_hash)


@dataclass(frozen=True)
class Anchor:
    """A (seq, hash) a verification saw, kept outside the database."""

    seq: int
    hash: str


def read_anchor(path: Path) -> Anchor | None:
    """The last anchor in ``path`` (JSON lines), or None when there is none yet."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 4096))
            lines = [line for line in fh.read().splitlines() if line.strip()]
    except FileNotFoundError:
        return None
    if not lines:
        return None
    try:
        last = json.loads(lines[-1])
        return Anchor(int(last["seq"]), str(last["hash"]))
    except (ValueError, KeyError, TypeError):
        raise InvalidInput(f"the audit anchor file {path} is unreadable") from None


def write_anchor(path: Path, result: VerifyResult) -> None:
    """Append the verified head to ``path`` (created 0600), flushed to disk."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"seq": result.head_seq, "hash": result.head_hash,
                             "time": _time(utcnow())}) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def verify_anchored(*, session: Session, release: bool = False,
                    anchor_file: Path | None = None) -> VerifyResult:
    """:func:`verify` against the anchor file's last entry; a chain that verifies is
    anchored in its turn."""
    anchor = read_anchor(anchor_file) if anchor_file is not None else None
    result = verify(session=session, release=release, anchor=anchor)
    if result.ok and anchor_file is not None:
        write_anchor(anchor_file, result)
    return result


def _check(key: bytes, entry: AuditEntry, expected_seq: int,
           expected_prev: str) -> BrokenLink | None:
    if entry.seq != expected_seq:
        return BrokenLink(expected_seq, f"entries {expected_seq}..{entry.seq - 1} are missing")
    if not hmac.compare_digest(entry.prev_hash, expected_prev):
        return BrokenLink(entry.seq, "does not link to the previous entry "
                                     "(an entry was removed, inserted or moved)")
    if not hmac.compare_digest(entry.hash, entry_hash(key, entry)):
        return BrokenLink(entry.seq, "hash does not match the entry (altered or forged)")
    return None


def list_entries(
    *, session: Session, since: datetime | None = None, until: datetime | None = None,
    actor: str | None = None, action: str | None = None, limit: int = 100, offset: int = 0,
) -> tuple[list[AuditEntry], int]:
    query = select(AuditEntry)
    if since is not None:
        query = query.where(AuditEntry.created_at >= since)
    if until is not None:
        query = query.where(AuditEntry.created_at < until)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if action:
        query = query.where(AuditEntry.action == action)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(AuditEntry.seq.desc()).limit(limit).offset(offset)).all()
    return list(rows), total


def entry_dict(entry: AuditEntry) -> dict[str, Any]:
    return {"seq": entry.seq, "time": _time(entry.created_at), "actor": entry.actor,
            "action": entry.action, "target": entry.target, "request_id": entry.request_id,
            "client_ip": entry.client_ip, "details": entry.details,
            "prev_hash": entry.prev_hash, "hash": entry.hash}


def _page(session: Session, after: int, since: datetime | None,
          until: datetime | None) -> list[AuditEntry]:
    query = select(AuditEntry).where(AuditEntry.seq > after)
    if since is not None:
        query = query.where(AuditEntry.created_at >= since)
    if until is not None:
        query = query.where(AuditEntry.created_at < until)
    return list(session.scalars(query.order_by(AuditEntry.seq).limit(BATCH)).all())


def _csv_cell(value: Any) -> str:
    """A CSV cell a spreadsheet will not run as a formula (CWE-1236)."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True) \
        if isinstance(value, dict | list) else "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def export_page(
    *, session: Session, fmt: str, after: int = 0, since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[str, int | None]:
    """One batch of entries after ``after``, oldest first, as JSON lines or CSV rows (the
    CSV header comes with the first page), and the seq to continue from (None: done).

    Paged so a caller can use one short transaction per page: a long export must not
    hold SQLite's write lock.
    """
    if fmt not in ("jsonl", "csv"):
        raise InvalidInput("format must be jsonl or csv")
    rows = _page(session, after, since, until)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if fmt == "csv" and after == 0:
        writer.writerow(EXPORT_FIELDS)
    for entry in rows:
        data = entry_dict(entry)
        if fmt == "jsonl":
            buffer.write(json.dumps(data, sort_keys=True) + "\n")
        else:
            writer.writerow([_csv_cell(data[f]) for f in EXPORT_FIELDS])
    more = rows[-1].seq if len(rows) == BATCH else None
    return buffer.getvalue(), more


def export(*, session: Session, fmt: str, since: datetime | None = None,
           until: datetime | None = None) -> Iterator[str]:
    """Every entry, page by page, in one session (the CLI's export)."""
    after: int | None = 0
    while after is not None:
        chunk, after = export_page(session=session, fmt=fmt, after=after, since=since,
                                   until=until)
        yield chunk


@dataclass(frozen=True)
class ArchiveResult:
    through_seq: int
    archived: int
    archive: str


def archive_and_prune(
    *, session: Session, before: datetime, archive_dir: Path
) -> ArchiveResult | None:
    """Move entries older than ``before`` to a JSON-lines file and leave a checkpoint.

    Refuses (Conflict) when the chain does not verify: pruning would destroy the
    evidence. None when nothing is old enough.
    """
    head = _lock_head(session)
    result = verify(session=session)
    if not result.ok:
        raise Conflict("the audit chain does not verify; nothing was archived")
    through = session.scalar(select(func.max(AuditEntry.seq)).where(AuditEntry.created_at < before))
    if through is None:
        return None
    rows = session.scalars(
        select(AuditEntry).where(AuditEntry.seq <= through).order_by(AuditEntry.seq)
    ).all()
    if not rows:
        return None
    archive_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = archive_dir / f"audit-{rows[0].seq:012d}-{through:012d}.jsonl"
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for entry in rows:
            fh.write(json.dumps(entry_dict(entry), sort_keys=True) + "\n")
        fh.flush()
    tmp.chmod(0o600)
    tmp.replace(path)
    cp = AuditCheckpoint(through_seq=through, last_hash=rows[-1].hash, archived_count=len(rows),
                         archive=str(path), created_at=utcnow())
    cp.mac = checkpoint_mac(_key(), cp)
    session.add(cp)
    session.execute(delete(AuditEntry).where(AuditEntry.seq <= through))
    session.flush()
    assert head.last_seq >= through
    return ArchiveResult(through, len(rows), str(path))
