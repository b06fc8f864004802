"""Fault drill: many jobs through the real platform while its parts are killed.

Starts an embedded Redis, the API, beat and two worker processes (2 pool processes
each) on SQLite (or a new PostgreSQL database), submits ``--jobs`` ``system.ping`` jobs
through the API in batches, and while they run SIGKILLs a worker (its whole process
group) every ``--kill-every`` seconds (or, on a loaded machine, as soon as both workers
are up again), starting a new one at once, and SIGKILLs the
embedded Redis ``--redis-kills`` times (at even steps of completion), starting it again
a second later on the same port, password and data. When every job is final (or
``--timeout`` passes) it prints the counts:

- submitted, and accepted (answered 202) by the API;
- succeeded, failed;
- lost: accepted job ids with no row;
- not final: rows still queued or running at the end;
- completed twice: jobs whose handler ran to completion more than once, counted from the
  workers' own logs ("job succeeded" and "job finished after cancel" lines of every
  worker process, including the killed ones);
- claimed more than once: jobs with ``attempts`` > 1 (a killed worker's job taken over);
- requeued and republished by the reaper (jobs of killed workers whose lease expired,
  and queued jobs whose message was lost: found after a Redis restart, or published
  again after ``SECOPS_QUEUED_REPUBLISH_AFTER``, 301 s here).

The broker is the embedded Redis, or ``SECOPS_BROKER_URL`` when it is set in the
environment (the Redis kills then hit the rate limiter's and sessions' Redis only).
Exits 1 if a job is lost, completed twice or not final.

    .venv/bin/python benchmarks/drills.py --jobs 10000
    .venv/bin/python benchmarks/drills.py --jobs 10000 --database postgresql
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _platform import drop_database, migrate_with_key, new_database  # noqa: E402
from _signals import exit_on_termination  # noqa: E402

from secops.embedded import EmbeddedRedis, free_port  # noqa: E402

QUEUES = "default,scan,dlp,privacy,certs,anomaly,audit,system"
BATCH = 1000


class Child:
    """A platform process in its own process group, with its own log file."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with open(log, "ab") as fh:
            self.p = subprocess.Popen(argv, env={**os.environ, **env}, cwd=ROOT, stdout=fh,
                                      stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        try:
            os.killpg(self.p.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self) -> None:
        self.kill(signal.SIGTERM)
        try:
            self.p.wait(20)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)
            self.p.wait()


def platform_env(tmp: Path, db_url: str, redis_url: str) -> dict[str, str]:
    from secops.kinds import KINDS

    return {
        "SECOPS_DATA_DIR": str(tmp / "data"), "SECOPS_DATABASE_URL": db_url,
        "SECOPS_REDIS_URL": redis_url,
        "SECOPS_API_KEY_HMAC": secrets.token_hex(16), "SECOPS_AUDIT_HMAC": secrets.token_hex(16),
        "SECOPS_STORAGE_KEY": secrets.token_hex(32), "SECOPS_LOG_LEVEL": "INFO",
        "SECOPS_BATCH_MAX_JOBS": str(BATCH), "SECOPS_RATE_LIMIT_SUBMIT": "1000000/minute",
        "SECOPS_RATE_LIMIT_READ": "1000000/minute",
        # Short time limits: a killed worker's messages come back after the broker's
        # visibility timeout (the longest limit plus the margin), its jobs' leases expire
        # after the limit plus the grace, and the reaper looks every two seconds.
        "SECOPS_JOB_TIME_LIMIT_DEFAULT": "8",
        "SECOPS_JOB_TIME_LIMITS": json.dumps({name: 8 for name in KINDS} | {"system.ping": 6}),
        "SECOPS_JOB_LEASE_GRACE": "1", "SECOPS_VISIBILITY_MARGIN": "3",
        "SECOPS_REAPER_INTERVAL": "2", "SECOPS_BEAT_RELOAD_INTERVAL": "1",
        "SECOPS_CERTS_RENEW_CRON": "",
        # A job whose message was lost (a worker killed between taking a message from
        # Redis and recording it as unacknowledged) is published again by the reaper
        # after this long: the shortest wait the setting allows.
        "SECOPS_QUEUED_REPUBLISH_AFTER": "301",
    }


def worker_argv(name: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "tasks", "worker", "--loglevel", "INFO",
            "-Q", QUEUES, "--concurrency", "2", "--hostname", f"{name}@%h",
            "--without-mingle", "--without-gossip"]


def wait_api(base: str, api: Child, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            if api.p.poll() is not None:
                raise SystemExit(f"the API exited; see {api.log}") from None
        time.sleep(0.2)
    raise SystemExit("the API did not start in time")


def submit(base: str, key: str, n: int) -> tuple[list[str], int]:
    """Submit ``n`` jobs in batches; a batch refused (503, a dropped connection) is sent
    again with its Idempotency-Key. Returns the accepted ids and the resends."""
    accepted: list[str] = []
    resends = 0
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"},
                      timeout=120) as client:
        for start in range(0, n, BATCH):
            jobs = [{"kind": "system.ping", "params": {"message": str(i)}}
                    for i in range(start, min(n, start + BATCH))]
            idem = {"Idempotency-Key": f"drill-{start}"}
            for attempt in range(30):
                try:
                    resp = client.post("/v1/jobs/batch", json={"jobs": jobs}, headers=idem)
                except httpx.HTTPError:
                    resp = None
                if resp is not None and resp.status_code == 202:
                    accepted.extend(job["id"] for job in resp.json()["jobs"])
                    break
                resends += 1
                time.sleep(min(5.0, 0.5 * (attempt + 1)))
            else:
                raise SystemExit(f"batch at {start} was never accepted")
    return accepted, resends


def ready(worker: Child) -> bool:
    return "ready." in worker.log.read_text(errors="replace")


def completions(logs: list[Path]) -> tuple[Counter[str], Counter[str]]:
    """How many times each job's handler ran to the end, from the workers' log lines; and
    what the reaper did (jobs put back in the queue, published again)."""
    seen: Counter[str] = Counter()
    reaped: Counter[str] = Counter()
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            if not line.startswith("{") or "job" not in line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("message") in ("job succeeded", "job finished after cancel"):
                seen[record["job_id"]] += 1
            elif record.get("message") == "reaped stuck jobs":
                reaped.update({k: int(record.get(k, 0)) for k in ("requeued", "republished")})
    return seen, reaped


def run(args: argparse.Namespace, tmp: Path) -> dict[str, object]:  # noqa: PLR0915
    password = secrets.token_hex(16)
    broker = EmbeddedRedis(tmp, password)
    broker.start()
    db_url, pg_name = new_database(args.database, tmp, "drill")
    env = platform_env(tmp, db_url, broker.url)
    key = migrate_with_key(env, "drill")
    engine = sa.create_engine(db_url)
    children: list[Child] = []
    worker_logs: list[Path] = []
    incarnation = 0

    def new_worker(slot: int) -> Child:
        nonlocal incarnation
        incarnation += 1
        log = tmp / f"worker{slot}-{incarnation}.log"
        worker_logs.append(log)
        child = Child(worker_argv(f"w{slot}-{incarnation}"), env, log)
        children.append(child)
        return child

    def status_counts() -> Counter[str]:
        """The drill's jobs by status (schedules may add jobs of other kinds)."""
        try:
            with engine.connect() as c:
                return Counter(dict(c.execute(sa.text(
                    "SELECT status, count(*) FROM jobs WHERE kind = 'system.ping' "
                    "GROUP BY status")).all()))
        except sa.exc.OperationalError:
            return Counter()  # SQLite busy for a moment: ask again

    try:
        port = free_port()
        api = Child([sys.executable, "-m", "uvicorn", "--factory", "secops.api.app:create_app",
                     "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
                     "--no-access-log"], env, tmp / "api.log")
        children.append(api)
        children.append(Child([sys.executable, "-m", "celery", "-A", "tasks", "beat",
                               "--loglevel", "INFO"], env, tmp / "beat.log"))
        workers = {1: new_worker(1), 2: new_worker(2)}
        base = f"http://127.0.0.1:{port}"
        wait_api(base, api)
        started = time.monotonic()
        accepted, resends = submit(base, key, args.jobs)
        submitted_in = time.monotonic() - started
        redis_marks = [(i + 1) / (args.redis_kills + 1) for i in range(args.redis_kills)]
        worker_kills = redis_kills = 0
        first_kill = last_kill = 0.0
        next_kill = time.monotonic() + args.kill_every
        slot = 1
        deadline = started + args.timeout
        while time.monotonic() < deadline:
            counts = status_counts()
            final = counts["succeeded"] + counts["failed"] + counts["cancelled"]
            if final >= len(accepted) and counts and not counts["queued"] + counts["running"]:
                break
            if redis_marks and final >= redis_marks[0] * len(accepted):
                redis_marks.pop(0)
                assert broker.process is not None
                os.kill(broker.process.pid, signal.SIGKILL)
                broker.process.wait()
                redis_kills += 1
                time.sleep(1.0)
                broker = EmbeddedRedis(tmp, password, port=broker.port)
                broker.start()
            # A worker is killed only once both are up: on a loaded machine a worker may
            # take longer to start than the interval, and killing it before it is ready
            # would stop all progress rather than drill anything.
            if time.monotonic() >= next_kill and all(ready(w) for w in workers.values()):
                workers[slot].kill()
                workers[slot].p.wait()
                worker_kills += 1
                last_kill = time.monotonic()
                first_kill = first_kill or last_kill
                workers[slot] = new_worker(slot)
                slot = 3 - slot
                next_kill = time.monotonic() + args.kill_every
            time.sleep(0.2)
        duration = time.monotonic() - started
        kill_span = last_kill - first_kill if worker_kills > 1 else 0.0
        with engine.connect() as c:
            rows = {r.id: r for r in c.execute(sa.text(
                "SELECT id, status, attempts FROM jobs WHERE kind = 'system.ping'"))}
    finally:
        for child in children:
            child.stop()
        broker.stop()
        engine.dispose()
        drop_database(pg_name)
    ran, reaped = completions(worker_logs)
    statuses = Counter(row.status for row in rows.values())
    return {
        "submitted": args.jobs,
        "accepted": len(accepted),
        "batch resends": resends,
        "succeeded": statuses["succeeded"],
        "failed": statuses["failed"],
        "lost": sum(1 for job_id in accepted if job_id not in rows),
        "not final": statuses["queued"] + statuses["running"],
        "completed twice": sum(1 for count in ran.values() if count > 1),
        "succeeded, no completion line": sum(
            1 for job_id, row in rows.items() if row.status == "succeeded" and not ran[job_id]),
        "claimed more than once": sum(1 for row in rows.values() if row.attempts > 1),
        "requeued by the reaper": reaped["requeued"],
        "republished by the reaper": reaped["republished"],
        "worker kills": worker_kills,
        "seconds between worker kills": round(kill_span / max(1, worker_kills - 1), 1),
        "redis kills": redis_kills,
        "submit seconds": round(submitted_in, 1),
        "duration seconds": round(duration, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--kill-every", type=float, default=3.0,
                        help="seconds between worker SIGKILLs")
    parser.add_argument("--redis-kills", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args()
    broker = os.environ.get("SECOPS_BROKER_URL", "").split(":", 1)[0] or "redis (embedded)"
    with tempfile.TemporaryDirectory(prefix="secops-drill-") as d:
        counts = run(args, Path(d))
    print(f"drill: {args.jobs} system.ping jobs  database: {args.database}  broker: {broker}  "
          f"workers: 2 x 2 processes, one SIGKILLed every {args.kill_every:g} s or more  "
          f"cpus: {os.cpu_count()}  host: {platform.machine()}  "
          f"date: {datetime.now(UTC):%Y-%m-%d}")
    for name, value in counts.items():
        print(f"{name:32s} {value}")
    bad = counts["lost"] or counts["completed twice"] or counts["not final"]
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    exit_on_termination()
    main()
