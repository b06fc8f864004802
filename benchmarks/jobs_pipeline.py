"""Jobs pipeline throughput: SecOps (API + database + Celery) next to plain Celery.

Submits N ``system.ping`` jobs through the API (one request per job, and batches), with
a 2-process worker, and reports the enqueue rate, completed jobs per second and p50/p99
end-to-end latency (job created -> finished, from the job rows). Then plain Celery on the
same Redis broker runs the same trivial task (no API, no database) with a 2-process
worker, and the ratio of completed jobs per second is printed. Everything runs on this
machine, in one run, so the two are compared under the same load.

With ``--closed-loop``, instead: ``--clients`` threads (8) each submit one job per
request and poll it until it is done, then submit the next, against the SecOps API and
against a minimal FastAPI app whose endpoint only calls ``apply_async`` on plain Celery
(its task marks itself done in Redis, which the poll endpoint reads); same uvicorn
flags, same worker settings (2 processes, prefetch 4), same client, same run. It also
prints the CPU time each process spent per completed job (API, worker main process,
worker children, Redis, PostgreSQL's backends of the run's database, the client
threads), read from ``/proc`` before and after the loop: on a machine with few cores
the loop is CPU-bound, and jobs/s is about cores / CPU per job.

    .venv/bin/python benchmarks/jobs_pipeline.py --jobs 2000
    .venv/bin/python benchmarks/jobs_pipeline.py --jobs 2000 --database postgresql
    .venv/bin/python benchmarks/jobs_pipeline.py --closed-loop --jobs 400
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
import redis
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _platform import drop_database, migrate_with_key, new_database  # noqa: E402
from _signals import concurrently, exit_on_termination  # noqa: E402

from secops.embedded import EmbeddedRedis, free_port  # noqa: E402

PLAIN_APP = '''
import os, time, redis
from celery import Celery
app = Celery("plain", broker=os.environ["PLAIN_BROKER"])
app.conf.task_ignore_result = True
_r = None
@app.task(name="plain.ping")
def ping(params):
    global _r
    _r = _r or redis.Redis.from_url(os.environ["PLAIN_BROKER"])
    _r.rpush("plain:done", "%s %f" % (params["sent"], time.time()))
    return params
'''


PLAIN_API = '''
import os, redis
from fastapi import FastAPI
from plainapp import ping
app = FastAPI()
_r = redis.Redis.from_url(os.environ["PLAIN_BROKER"])
@app.post("/jobs", status_code=202)
def submit(body: dict) -> dict:
    return {"id": ping.apply_async(args=[body]).id}
@app.get("/jobs/{job_id}")
def get(job_id: str) -> dict:
    return {"status": "succeeded" if _r.sismember("plain:done-ids", job_id) else "queued"}
'''

PLAIN_CLOSED_APP = '''
import os, redis
from celery import Celery
app = Celery("plain", broker=os.environ["PLAIN_BROKER"])
app.conf.task_ignore_result = True
_r = None
@app.task(name="plain.ping", bind=True)
def ping(self, params):
    global _r
    _r = _r or redis.Redis.from_url(os.environ["PLAIN_BROKER"])
    _r.sadd("plain:done-ids", self.request.id)
    return params
'''


def closed_loop(base: str, headers: dict[str, str], submit: str, poll: str, clients: int,
                per_client: int) -> dict[str, float]:
    """``clients`` threads, each: submit one job, poll it until done, next. Jobs/s and
    p50/p99 of submit-to-seen-done."""
    latencies: list[float] = []
    submits: list[float] = []
    polls: list[int] = []

    def one_client(_: int) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            for i in range(per_client):
                t0 = time.perf_counter()
                resp = http.post(submit, json={"kind": "system.ping", "params": {"message": str(i)}}
                                 if "v1" in submit else {"message": str(i)})
                resp.raise_for_status()
                submits.append(time.perf_counter() - t0)
                job_id = resp.json()["id"]
                count = 1
                while http.get(poll.format(job_id)).json()["status"] != "succeeded":
                    time.sleep(0.005)
                    count += 1
                latencies.append(time.perf_counter() - t0)
                polls.append(count)

    t0 = time.perf_counter()
    concurrently(clients, one_client, range(clients))
    elapsed = time.perf_counter() - t0
    return {"completed_per_s": clients * per_client / elapsed,
            "p50_ms": pct(latencies, 50) * 1000, "p99_ms": pct(latencies, 99) * 1000,
            "submit_p50_ms": pct(submits, 50) * 1000, "submit_p99_ms": pct(submits, 99) * 1000,
            "polls_per_job": sum(polls) / len(polls)}


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_stat(pid: int) -> tuple[int, int, float] | None:
    """(ppid, process group, CPU seconds) of a live process, from /proc."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return int(fields[1]), int(fields[2]), (int(fields[11]) + int(fields[12])) / _TICK


def group_cpu(pgid: int) -> dict[int, float]:
    """CPU seconds of every live process in process group ``pgid``, by pid."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _proc_stat(int(entry.name))
            if stat is not None and stat[1] == pgid:
                out[int(entry.name)] = stat[2]
    return out


def pg_backends(url: str) -> list[int]:
    """Server pids of the connections to ``url``'s database (the other processes' pools)."""
    if not url.startswith("postgresql"):
        return []
    engine = sa.create_engine(url)
    try:
        with engine.connect() as c:
            return [int(p) for p in c.execute(sa.text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()")).scalars()]
    finally:
        engine.dispose()


class CpuMeter:
    """CPU seconds spent during the loop by the API, the worker (main process and
    children), Redis, PostgreSQL's backends of the database and this process (clients)."""

    def __init__(self, api: int, worker: int, redis_pid: int | None, url: str = "") -> None:
        self.api, self.worker, self.redis_pid, self.url = api, worker, redis_pid, url
        self.start = self._sample()
        self.start["client"] = time.process_time()  # after the sampling's own work

    def _sample(self) -> dict[str, float]:
        client = time.process_time()  # before this sampling's own work
        worker = group_cpu(self.worker)
        main = worker.pop(self.worker, 0.0)
        pg = sum((_proc_stat(p) or (0, 0, 0.0))[2] for p in pg_backends(self.url))
        redis_cpu = (_proc_stat(self.redis_pid) or (0, 0, 0.0))[2] if self.redis_pid else 0.0
        return {"api": sum(group_cpu(self.api).values()), "worker_main": main,
                "worker_children": sum(worker.values()), "redis": redis_cpu,
                "postgres": pg, "client": client}

    def per_job_ms(self, jobs: int) -> dict[str, float]:
        end = self._sample()
        out = {f"cpu_{k}_ms": (end[k] - self.start.get(k, 0.0)) * 1000 / jobs for k in end}
        out["cpu_total_ms"] = sum(out.values())
        return out


def stages(url: str) -> dict[str, float]:
    """From the job rows: p50/p99 of submit (row created) -> claim and claim -> finish."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as c:
            rows = c.execute(sa.text("SELECT created_at, started_at, finished_at FROM jobs "
                                     "WHERE status = 'succeeded' ORDER BY created_at")).all()
    finally:
        engine.dispose()
    queued = [(_ts(r[1]) - _ts(r[0])).total_seconds() for r in rows]
    running = [(_ts(r[2]) - _ts(r[1])).total_seconds() for r in rows]
    return {"queued_p50_ms": pct(queued, 50) * 1000, "queued_p99_ms": pct(queued, 99) * 1000,
            "running_p50_ms": pct(running, 50) * 1000, "running_p99_ms": pct(running, 99) * 1000}


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{url} did not come up") from None
            time.sleep(0.1)


UVICORN_FLAGS = ["--log-level", "warning", "--no-access-log", "--workers", "1"]
WORKER_FLAGS = ["--concurrency", "2", "--prefetch-multiplier", "4", "--loglevel", "INFO",
                "--without-mingle", "--without-gossip"]


def run_closed_secops(n: int, clients: int, db: str, tmp: Path, broker: str,
                      redis_pid: int | None) -> dict[str, float]:
    url, pg_name = new_database(db, tmp, "bench")
    env = {"SECOPS_DATA_DIR": str(tmp), "SECOPS_DATABASE_URL": url, "SECOPS_REDIS_URL": broker,
           "SECOPS_API_KEY_HMAC": secrets.token_hex(16), "SECOPS_AUDIT_HMAC": secrets.token_hex(16),
           "SECOPS_STORAGE_KEY": secrets.token_hex(32), "SECOPS_LOG_LEVEL": "INFO",
           "SECOPS_RATE_LIMIT_SUBMIT": "1000000/minute",
           "SECOPS_RATE_LIMIT_READ": "1000000/minute"}
    key = migrate_with_key(env, "bench")
    port = free_port()
    api = start([sys.executable, "-m", "uvicorn", "--factory", "secops.api.app:create_app",
                 "--port", str(port), *UVICORN_FLAGS], env, tmp / "api.log")
    worker = start([sys.executable, "-m", "celery", "-A", "tasks", "worker", "-Q", "default",
                    *WORKER_FLAGS], env, tmp / "worker.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/healthz", api)
        wait_ready(tmp / "worker.log", "ready.")
        meter = CpuMeter(api.pid, worker.pid, redis_pid, url)
        per_client = max(1, n // clients)
        figures = closed_loop(base, {"Authorization": f"Bearer {key}"}, "/v1/jobs",
                              "/v1/jobs/{}", clients, per_client)
        return {**figures, **meter.per_job_ms(clients * per_client), **stages(url)}
    finally:
        stop(api)
        stop(worker)
        drop_database(pg_name)


def run_closed_plain(n: int, clients: int, tmp: Path, broker: str,
                     redis_pid: int | None) -> dict[str, float]:
    plain_dir = tmp / "plain"
    plain_dir.mkdir(exist_ok=True)
    (plain_dir / "plainapp.py").write_text(PLAIN_CLOSED_APP)
    (plain_dir / "plainapi.py").write_text(PLAIN_API)
    env = {"PLAIN_BROKER": broker, "PYTHONPATH": str(plain_dir)}
    port = free_port()
    api = start([sys.executable, "-m", "uvicorn", "plainapi:app", "--port", str(port),
                 *UVICORN_FLAGS], env, tmp / "plainapi.log")
    worker = start([sys.executable, "-m", "celery", "-A", "plainapp", "worker", *WORKER_FLAGS],
                   env, tmp / "plainworker.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/docs", api)
        wait_ready(tmp / "plainworker.log", "ready.")
        meter = CpuMeter(api.pid, worker.pid, redis_pid)
        per_client = max(1, n // clients)
        figures = closed_loop(base, {}, "/jobs", "/jobs/{}", clients, per_client)
        return {**figures, **meter.per_job_ms(clients * per_client)}
    finally:
        stop(api)
        stop(worker)


def _ts(value: object) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, env={**os.environ, **env}, cwd=ROOT, stdout=open(log, "wb"),  # noqa: SIM115
                            stderr=subprocess.STDOUT, start_new_session=True)


def wait_ready(log: Path, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {text!r} in {log}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def run_secops(n: int, db: str, tmp: Path, broker: str) -> dict[str, float]:
    url, pg_name = new_database(db, tmp, "bench")
    env = {"SECOPS_DATA_DIR": str(tmp), "SECOPS_DATABASE_URL": url, "SECOPS_REDIS_URL": broker,
           "SECOPS_API_KEY_HMAC": secrets.token_hex(16), "SECOPS_AUDIT_HMAC": secrets.token_hex(16),
           "SECOPS_STORAGE_KEY": secrets.token_hex(32), "SECOPS_LOG_LEVEL": "INFO",
           "SECOPS_BATCH_MAX_JOBS": "1000", "SECOPS_RATE_LIMIT_SUBMIT": "1000000/minute",
           "SECOPS_RATE_LIMIT_READ": "1000000/minute"}
    key = migrate_with_key(env, "bench")
    port = free_port()
    api = start([sys.executable, "-m", "uvicorn", "--factory", "secops.api.app:create_app",
                 "--port", str(port), "--log-level", "warning", "--no-access-log"], env,
                tmp / "api.log")
    worker = start([sys.executable, "-m", "celery", "-A", "tasks", "worker", "-Q", "default",
                    "--prefetch-multiplier", "4",
                    "--concurrency", "2", "--loglevel", "INFO", "--without-mingle",
                    "--without-gossip"], env, tmp / "worker.log")
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {key}"}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                if api.poll() is not None:  # it refused to start: say why, not "connection refused"
                    log = (tmp / "api.log").read_text(errors="replace").strip().splitlines()
                    raise SystemExit(f"the API exited: {log[-1] if log else api.returncode}") from None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        wait_ready(tmp / "worker.log", "ready.")
        engine = sa.create_engine(url)

        def finished() -> int:
            with engine.connect() as c:
                return int(c.execute(sa.text(
                    "SELECT count(*) FROM jobs WHERE status IN ('succeeded','failed')")).scalar_one())

        def wait_all(total: int) -> float:
            while finished() < total:
                time.sleep(0.05)
            return time.perf_counter()

        # single submits: 4 client threads, one job per request
        single_n = max(1, n // 4)
        with httpx.Client(base_url=base, headers=headers) as client:
            t0 = time.perf_counter()
            concurrently(4, lambda i: client.post("/v1/jobs", json={
                "kind": "system.ping", "params": {"message": str(i)}}).raise_for_status(),
                range(single_n))
            single_rate = single_n / (time.perf_counter() - t0)
        wait_all(single_n)

        # batch submits: the throughput run
        batch = 500
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            t0 = time.perf_counter()
            for start_i in range(0, n, batch):
                jobs = [{"kind": "system.ping", "params": {"message": str(i)}}
                        for i in range(start_i, min(n, start_i + batch))]
                client.post("/v1/jobs/batch", json={"jobs": jobs}).raise_for_status()
            enqueued = time.perf_counter()
        done = wait_all(single_n + n)
        with engine.connect() as c:
            rows = c.execute(sa.text(
                "SELECT created_at, finished_at, status FROM jobs ORDER BY created_at")).all()
        latencies = [(_ts(r[1]) - _ts(r[0])).total_seconds() for r in rows[single_n:] if r[1]]
        failed = sum(1 for r in rows if r[2] != "succeeded")
        engine.dispose()
        return {"single_enqueue_per_s": single_rate, "batch_enqueue_per_s": n / (enqueued - t0),
                "completed_per_s": n / (done - t0), "p50_ms": pct(latencies, 50) * 1000,
                "p99_ms": pct(latencies, 99) * 1000, "failed": failed}
    finally:
        stop(api)
        stop(worker)
        drop_database(pg_name)


def run_plain(n: int, tmp: Path, broker: str) -> dict[str, float]:
    (tmp / "plainapp.py").write_text(PLAIN_APP)
    env = {"PLAIN_BROKER": broker, "PYTHONPATH": str(tmp)}
    worker = start([sys.executable, "-m", "celery", "-A", "plainapp", "worker", "--concurrency",
                    "2", "--loglevel", "INFO", "--without-mingle", "--without-gossip"], env,
                   tmp / "plain.log")
    try:
        wait_ready(tmp / "plain.log", "ready.")
        os.environ["PLAIN_BROKER"] = broker
        sys.path.insert(0, str(tmp))
        import plainapp  # type: ignore[import-not-found]

        r = redis.Redis.from_url(broker, decode_responses=True)
        r.delete("plain:done")
        t0 = time.perf_counter()
        with plainapp.app.producer_or_acquire() as producer:
            for i in range(n):
                plainapp.ping.apply_async(args=[{"message": str(i), "sent": time.time()}],
                                          producer=producer)
        enqueued = time.perf_counter()
        while r.llen("plain:done") < n:
            time.sleep(0.05)
        done = time.perf_counter()
        latencies = [float(b) - float(a) for a, b in
                     (str(x).split() for x in r.lrange("plain:done", 0, -1))]
        return {"enqueue_per_s": n / (enqueued - t0), "completed_per_s": n / (done - t0),
                "p50_ms": pct(latencies, 50) * 1000, "p99_ms": pct(latencies, 99) * 1000}
    finally:
        stop(worker)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--closed-loop", action="store_true",
                        help="clients submit one job and poll it until done, then the next")
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    if args.closed_loop:
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            server = EmbeddedRedis(tmp, secrets.token_hex(8))
            server.start()
            try:
                redis_pid = server.process.pid if server.process else None
                ours = run_closed_secops(args.jobs, args.clients, args.database, tmp, server.url,
                                         redis_pid)
                plain = run_closed_plain(args.jobs, args.clients, tmp, server.url, redis_pid)
            finally:
                server.stop()
        print(f"closed loop: {args.clients} clients x {args.jobs // args.clients} jobs  "
              f"database: {args.database}  worker: 2 processes  cpus: {os.cpu_count()}")
        print(f"secops  completed : {ours['completed_per_s']:7.1f} jobs/s  "
              f"p50 {ours['p50_ms']:.0f} ms  p99 {ours['p99_ms']:.0f} ms  "
              f"polls per job {ours['polls_per_job']:.1f}")
        print(f"secops  submit request p50 {ours['submit_p50_ms']:.0f} ms  p99 "
              f"{ours['submit_p99_ms']:.0f} ms; job rows: submit->claim p50 "
              f"{ours['queued_p50_ms']:.0f} ms  p99 {ours['queued_p99_ms']:.0f} ms, "
              f"claim->finish p50 {ours['running_p50_ms']:.0f} ms  "
              f"p99 {ours['running_p99_ms']:.0f} ms")
        print(f"celery  completed : {plain['completed_per_s']:7.1f} jobs/s  "
              f"p50 {plain['p50_ms']:.0f} ms  p99 {plain['p99_ms']:.0f} ms  "
              f"polls per job {plain['polls_per_job']:.1f}")
        print(f"celery  submit request p50 {plain['submit_p50_ms']:.0f} ms  "
              f"p99 {plain['submit_p99_ms']:.0f} ms")
        for name, fig in (("secops", ours), ("celery", plain)):
            print(f"{name}  cpu ms per job: api {fig['cpu_api_ms']:.2f}  worker main "
                  f"{fig['cpu_worker_main_ms']:.2f}  worker children "
                  f"{fig['cpu_worker_children_ms']:.2f}  redis {fig['cpu_redis_ms']:.2f}  "
                  f"postgres {fig['cpu_postgres_ms']:.2f}  client {fig['cpu_client_ms']:.2f}  "
                  f"total {fig['cpu_total_ms']:.2f}")
        print(f"ratio secops/celery: {ours['completed_per_s'] / plain['completed_per_s']:.2f}"
              "  (goal >= 0.5);  cpu per job celery/secops: "
              f"{plain['cpu_total_ms'] / ours['cpu_total_ms']:.2f}")
        return
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        server = EmbeddedRedis(tmp, secrets.token_hex(8))
        server.start()
        try:
            ours = run_secops(args.jobs, args.database, tmp, server.url)
            plain = run_plain(args.jobs, tmp, server.url)
        finally:
            server.stop()
    print(f"jobs: {args.jobs}  database: {args.database}  worker: 2 processes  "
          f"cpus: {os.cpu_count()}")
    print(f"secops  single submit enqueue : {ours['single_enqueue_per_s']:8.0f} jobs/s (4 clients)")
    print(f"secops  batch submit enqueue  : {ours['batch_enqueue_per_s']:8.0f} jobs/s (batches of 500)")
    print(f"secops  completed             : {ours['completed_per_s']:8.0f} jobs/s   "
          f"p50 {ours['p50_ms']:.0f} ms  p99 {ours['p99_ms']:.0f} ms  failed {ours['failed']:.0f}")
    print(f"celery  enqueue (apply_async) : {plain['enqueue_per_s']:8.0f} tasks/s")
    print(f"celery  completed             : {plain['completed_per_s']:8.0f} tasks/s  "
          f"p50 {plain['p50_ms']:.0f} ms  p99 {plain['p99_ms']:.0f} ms")
    print(f"ratio secops/celery completed : {ours['completed_per_s'] / plain['completed_per_s']:.2f}"
          "  (goal >= 0.5)")


if __name__ == "__main__":
    exit_on_termination()
    main()
