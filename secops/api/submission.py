"""Submitting jobs at the HTTP boundary: idempotency, commit, then publish.

Rows are committed before their messages are published, so a worker never receives a
job id the database does not know; if publishing fails the jobs are failed (never left
``queued`` with no message) and the client gets 503 and may retry with the same key.

Single-job submits (:func:`submit_one`) that arrive together in one API process are
committed together (group commit): the first to find no write under way writes every
submit waiting at that moment in one transaction (their job rows, then their audit
entries under one lock of the chain's head) and commits once; the others wait for that
commit, and the next write takes those that arrived meanwhile. Right after the commit
the writer publishes the group's messages (one broker round trip), and each request
answers once its own row and audit entry are committed and its message published.
A submit that fails its checks fails alone; when the transaction itself fails, each of
its submits is written again in a transaction of its own, so one submit's error is
never another's. Several API processes each take the head's lock once per write.
"""

from __future__ import annotations

import logging
import threading
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    StatementError,
)
from sqlalchemy.orm import Session

from secops.api.deps import Principal
from secops.config import get_settings
from secops.db.models import Job
from secops.db.session import get_sessionmaker
from secops.errors import (
    DatabaseUnavailable,
    InvalidInput,
    PermissionDenied,
    SecOpsError,
    Unavailable,
)
from secops.services import audit, idempotency, ownership
from secops.services.audit import AuditContext
from secops.services.jobs import build_jobs, insert_jobs, job_rows
from tasks.dispatch import enqueue_or_fail

log = logging.getLogger(__name__)


class IdempotentRequest:
    """A request's ``Idempotency-Key``, the rules of ``services.idempotency`` at the HTTP
    boundary: :meth:`replay` answers a repeat with what the first request created, or
    reserves the key (committed, so a concurrent request gets 409); :meth:`record` notes
    what this request created, in its transaction; :meth:`forget` frees the key when the
    request failed, so the client may retry with it. Without a key, all three do nothing.
    """

    def __init__(self, session: Session, owner: str, key: str | None, body: Any) -> None:
        self.session, self.owner, self.key, self.body = session, owner, key, body
        self.reservation: idempotency.Reservation | None = None

    def replay(self) -> list[str] | None:
        if self.key is None:
            return None
        self.reservation = idempotency.reserve(
            session=self.session, owner=self.owner, key=self.key,
            body_hash=idempotency.request_hash(self.body))
        if self.reservation.job_ids is not None:
            return list(self.reservation.job_ids)
        self.session.commit()
        return None

    def record(self, ids: list[str]) -> None:
        if self.reservation is not None:
            idempotency.complete(session=self.session, record_id=self.reservation.record_id,
                                 job_ids=ids)

    def forget(self) -> None:
        if self.reservation is not None:
            idempotency.release(session=self.session, record_id=self.reservation.record_id)
            self.session.commit()


def submit_jobs(
    *,
    session: Session,
    principal: Principal,
    items: list[tuple[str, dict[str, Any]]],
    idempotency_key: str | None,
    body: Any,
    audit_ctx: AuditContext,
) -> list[Job]:
    _check(session, principal, items)
    request = IdempotentRequest(session, principal.actor, idempotency_key, body)
    earlier = request.replay()
    if earlier is not None:
        return _load(session, earlier)
    try:
        jobs = insert_jobs(session=session, items=items, submitted_by=principal.actor,
                           idempotency_key=idempotency_key)
        ids = [j.id for j in jobs]
        request.record(ids)
        # Last before the commit: the audit entry locks the chain's head until then.
        audit.record(session=session, ctx=audit_ctx, action="jobs.submit",
                     target=f"job:{ids[0]}" if len(ids) == 1 else f"jobs:batch:{len(ids)}",
                     details={"kinds": sorted({j.kind for j in jobs}), "count": len(ids),
                              "job_ids": ids[:100]})
        session.commit()
    except BaseException:
        session.rollback()
        request.forget()
        raise
    try:
        enqueue_or_fail([(j.id, j.kind) for j in jobs])
    except Unavailable:
        request.forget()
        raise
    return jobs


def _check(session: Session | None, principal: Principal,
           items: list[tuple[str, dict[str, Any]]]) -> None:
    """What the key may submit: the kind, system.ping's sleep for its role, and (a service
    key) only its own objects in the parameters (read through ``session``)."""
    cap = get_settings().ping_max_sleep
    for kind, params in items:
        if not principal.may_submit(kind):
            raise PermissionDenied("this key may not submit that job kind")
        if kind == "system.ping" and principal.role != "admin" and \
                _number((params or {}).get("sleep")) > cap:
            raise InvalidInput(f"system.ping may sleep at most {cap:g} s for this key's role")
        if principal.sees_only_own:
            assert session is not None
            ownership.check_job_params(session=session, actor=principal.actor,
                                       params=params or {})


def submit_one(
    *,
    principal: Principal,
    kind: str,
    params: dict[str, Any],
    idempotency_key: str | None,
    body: Any,
    audit_ctx: AuditContext,
) -> Job:
    """:func:`submit_jobs` for one job, committed together with the single-job submits
    this process receives at the same time (see the module's docstring)."""
    items = [(kind, params)]
    session: Session | None = None
    request: IdempotentRequest | None = None
    try:
        if principal.sees_only_own or idempotency_key is not None:
            session = get_sessionmaker()()
        _check(session, principal, items)
        if session is not None:
            request = IdempotentRequest(session, principal.actor, idempotency_key, body)
            earlier = request.replay()
            if earlier is not None:
                return _load(session, earlier)[0]
            # No transaction left open while this request waits for the group's write
            # (on SQLite an open one would hold the write lock that write needs).
            session.rollback()
        pending = _Submit(principal.actor, kind, params, idempotency_key, audit_ctx,
                          request.reservation.record_id
                          if request is not None and request.reservation else None)
        try:
            return _group_commit().write(pending)  # committed and published
        except BaseException:
            if request is not None:
                request.forget()
            raise
    finally:
        if session is not None:
            session.close()


@dataclass(eq=False)
class _Submit:
    """One single-job submit waiting for the group's write, and its outcome."""

    actor: str
    kind: str
    params: dict[str, Any]
    idempotency_key: str | None
    audit_ctx: AuditContext
    reservation: int | None  # the idempotency record that names the job once committed
    job: Job | None = None
    error: BaseException | None = None
    taken: bool = False  # in a group being written or published
    done: bool = False


class GroupCommit:
    """Writes the submits handed to :meth:`write` at the same time in one transaction.

    No thread of its own: the first caller that finds no write under way becomes the
    writer for everything queued (at most ``limit`` submits), the others wait on the
    condition until their submit is done or it is their turn to write. Once a group is
    committed the next one may be written while the first is being published."""

    def __init__(self, limit: int = 64) -> None:
        self.limit = limit
        self._changed = threading.Condition()
        self._queue: list[_Submit] = []
        self._writing = False

    def write(self, submit: _Submit) -> Job:
        """Commit and publish ``submit`` (with whatever else is waiting): its job,
        written, committed and published, or its own error raised."""
        with self._changed:
            self._queue.append(submit)
            while (self._writing or submit.taken) and not submit.done:
                self._changed.wait()
            batch: list[_Submit] = []
            if not submit.done:   # this thread writes: its own submit, then the oldest
                self._writing = True
                self._queue.remove(submit)
                others, self._queue = self._queue[:self.limit - 1], self._queue[self.limit - 1:]
                batch = [submit, *others]
                for taken in batch:
                    taken.taken = True
        if batch:
            try:
                try:
                    _write(batch)
                finally:
                    # the next group may be written while this one is published
                    with self._changed:
                        self._writing = False
                        self._changed.notify_all()
                _publish(batch)
            except BaseException as exc:
                # the writer's thread raises it; no submit answers with a job that was not
                # published (a committed one is published again by the reaper)
                for waiting in batch:
                    if waiting.error is None:
                        waiting.job, waiting.error = None, _unavailable(exc)
                raise
            finally:
                with self._changed:
                    for waiting in batch:
                        waiting.done = True
                    self._changed.notify_all()
        if submit.error is not None:
            raise submit.error
        assert submit.job is not None
        return submit.job


_group_commits: dict[str, GroupCommit] = {}
_group_commits_lock = threading.Lock()


def _group_commit() -> GroupCommit:
    """This process's group commit for the configured database."""
    url = get_settings().resolved_database_url
    found = _group_commits.get(url)
    if found is None:
        with _group_commits_lock:
            found = _group_commits.setdefault(url, GroupCommit())
    return found


class _OutcomeUnknown(Exception):
    """The group's COMMIT got no answer (the connection was lost): the database may
    have committed it or not."""


def _one_submits_fault(exc: Exception) -> bool:
    """Whether one submit's values can have caused this error of a group's transaction:
    a constraint or a value the database refused, or a value that could not be bound.
    Any other (the database unreachable, a lock not granted, a connection lost) would
    fail each submit alone just the same, so the group then fails at once instead of
    trying every submit in turn."""
    if isinstance(exc, IntegrityError | DataError):
        return True
    return isinstance(exc, StatementError) and not isinstance(exc, DBAPIError)


def _write(batch: list[_Submit]) -> None:
    """Commit ``batch`` in one transaction. If that fails on something one submit can
    cause, each submit is written again in a transaction of its own; if the database
    itself failed, or the outcome of the COMMIT is unknown (writing again could record
    the jobs twice), every submit fails with a 503 to retry. Every submit ends done,
    with its job or its own error."""
    try:
        try:
            _write_together(batch)
        except Exception as exc:
            failure = exc.__cause__ if isinstance(exc, _OutcomeUnknown) else exc
            if len(batch) == 1 and not isinstance(exc, _OutcomeUnknown):
                batch[0].error = exc
            elif isinstance(exc, _OutcomeUnknown) or not _one_submits_fault(exc):
                log.error("group write failed", extra={
                    "error": type(failure).__name__, "submits": len(batch)})
                for submit in batch:
                    if submit.error is None:
                        submit.error = _unavailable(failure)
            else:
                for submit in batch:
                    submit.job = submit.error = None
                    try:
                        _write_together([submit])
                    except _OutcomeUnknown as unknown:
                        submit.error = _unavailable(unknown.__cause__)
                    except Exception as alone:
                        submit.error = alone
    except BaseException as exc:
        # the writer's thread raises it; each waiting submit gets an error of its own
        for submit in batch:
            if submit.job is None and submit.error is None:
                submit.error = _unavailable(exc)
        raise
    finally:
        for submit in batch:
            if submit.error is not None:
                submit.job = None


def _publish(batch: list[_Submit]) -> None:
    """Publish the messages of the submits of ``batch`` that were committed, at once.
    When the broker is down they are failed (never left queued with no message) and
    each of those submits gets Unavailable (a 503 to retry); any other error is each
    one's own."""
    written = [(submit, submit.job) for submit in batch
               if submit.job is not None and submit.error is None]
    try:
        enqueue_or_fail([(job.id, job.kind) for _, job in written])
    except Unavailable as exc:
        for submit, _ in written:
            submit.job, submit.error = None, Unavailable(exc.message)
            submit.error.__cause__ = exc.__cause__
    except Exception as exc:
        for submit, _ in written:
            submit.job, submit.error = None, exc
    except BaseException as exc:
        for submit, _ in written:
            submit.job, submit.error = None, _unavailable(exc)
        raise


def _unavailable(cause: BaseException | None) -> DatabaseUnavailable:
    error = DatabaseUnavailable()
    error.__cause__ = cause
    return error


def _write_together(batch: list[_Submit]) -> None:
    """The jobs of ``batch`` (those that pass their kind's checks), their idempotency
    records and their audit entries, in one transaction, committed. A submit that fails
    its checks gets its error and nothing of it is written; any other error rolls the
    whole transaction back and is raised."""
    with closing(get_sessionmaker()()) as session:
        try:
            written: list[_Submit] = []
            jobs: list[Job] = []
            for submit in batch:
                try:
                    job = build_jobs(session=session, items=[(submit.kind, submit.params)],
                                     submitted_by=submit.actor,
                                     idempotency_key=submit.idempotency_key, pending=jobs)[0]
                except SecOpsError as exc:
                    submit.error = exc
                    continue
                jobs.append(job)
                submit.job = job
                written.append(submit)
            for submit in written:
                if submit.reservation is not None:
                    assert submit.job is not None
                    idempotency.complete(session=session, record_id=submit.reservation,
                                         job_ids=[submit.job.id])
            # Last before the commit: the audit entries lock the chain's head until then.
            # The job rows go with them (one statement on PostgreSQL).
            audit.record_many(session=session, entries=[
                (s.audit_ctx, "jobs.submit", f"job:{j.id}",
                 {"kinds": [j.kind], "count": 1, "job_ids": [j.id]})
                for s, j in zip(written, jobs, strict=True)], rows=[job_rows(jobs)])
            try:
                session.commit()
            except DBAPIError as exc:
                # an error the server answered with rolled the transaction back; with
                # no answer (the connection lost) it may have committed
                if exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError):
                    raise _OutcomeUnknown() from exc
                raise
        except BaseException:
            session.rollback()
            for submit in written:
                submit.job = None
            raise


def _number(value: Any) -> float:
    """A numeric param as a float (0 when absent; the kind's own model rejects the rest)."""
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def _load(session: Session, job_ids: list[str]) -> list[Job]:
    found = {j.id: j for j in session.scalars(select(Job).where(Job.id.in_(job_ids))).all()}
    return [found[i] for i in job_ids if i in found]
