"""Anomaly detection throughput: the local command next to a fail2ban-style loop and Drain3.

Generates a mixed log (sshd/sudo auth.log, nginx combined access log, JSON lines of a web
portal; background with attacks sprinkled in) of the requested size from a fixed seed,
then, in the same run and on the same files:

* ``secops anomaly detect --local --json`` as a child process: lines per second of CPU
  time (user + system: "per core"), wall time, peak RSS, alert count; and the same with
  the engine's modules as Python source instead of compiled (``SECOPS_PURE_PYTHON=1``);
* a fail2ban-style loop: every line through fail2ban's sshd failregex set and a date
  regex, failures counted per address in a findtime window (maxretry 5, findtime 600);
* Drain3 ``TemplateMiner.add_log_message`` over the first ``--drain-lines`` lines;

and the local command's rate divided by the fail2ban-style loop's within each run (the
machine's speed drifts between runs; the ratio within a run is steadier).

    python benchmarks/anomaly.py                    # 20 MB, 5 runs
    python benchmarks/anomaly.py --mb 1024 --runs 1 # the 1 GB log of docs/anomaly.md

Peak RSS of the local command is measured at two sizes (``--mb`` and a quarter of it),
on the first run (a later child's peak would include this process's size once the peers
have grown it).
The project's bytecode is cached first, as an install leaves it.

``--platform-lines N`` measures instead the platform's windows: the first N lines of the
generated log (merged by time) through the detector with its windows in Redis (an
embedded server of this script, emptied before each run; chunks of 500 events, atomic
incident extension), wall and CPU time, next to the same lines through the in-memory
windows of the local command in the same run:

    python benchmarks/anomaly.py --platform-lines 5000 --runs 5

``--breakdown`` measures instead where the local engine's CPU time goes on the generated
log (in this process, ``--runs`` times, medians): importing the engine, reading and
parsing as the command does (requests that only baseline rules read kept as light
tuples), merging, the detector without the credential rule, the credential scan, next to one
``re.findall`` per file that extracts only the fields the rules read (the floor of a
bulk path that never builds events); the detector on its general steps
(``Detector(fast=False)``, every line an event) and with each rule alone over events
(all with the garbage collector's threshold of the command); and what share of the
lines each set of rules reads (a line no rule reads is one a bulk path could drop):

    python benchmarks/anomaly.py --breakdown --mb 20 --runs 5
"""

from __future__ import annotations

import argparse
import compileall
import gc
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict, deque
from datetime import UTC, datetime
from pathlib import Path

START = datetime(2026, 12, 7, tzinfo=UTC).timestamp()
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
USERS = [f"user{i}" for i in range(300)]
PATHS = ["/", "/docs", "/pricing", "/blog/post-1", "/api/v1/items", "/static/app.js",
         "/static/app.css", "/login", "/favicon.ico"]


def _ip(r: random.Random) -> str:
    return f"{r.randint(11, 223)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"


def generate(folder: Path, size: int, seed: int = 7) -> int:
    """Write about ``size`` bytes of mixed logs; returns the number of lines."""
    r = random.Random(seed)
    files = {name: (folder / name).open("w") for name in ("auth.log", "access.log", "portal.jsonl")}
    written = lines = 0
    t = START
    visitors = [_ip(r) for _ in range(5000)]
    while written < size:
        t += r.expovariate(200.0)
        when = datetime.fromtimestamp(t, UTC)
        roll = r.random()
        if roll < 0.55:
            ip = r.choice(visitors)
            status = 404 if r.random() < 0.01 else 200
            line = (f'{ip} - - [{when.day:02d}/{MONTHS[when.month - 1]}/{when.year}:{when:%H:%M:%S} '
                    f'+0000] "GET {r.choice(PATHS)} HTTP/1.1" {status} {r.randint(200, 40000)} '
                    f'"-" "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"\n')
            out = files["access.log"]
        elif roll < 0.8:
            stamp = f"{MONTHS[when.month - 1]} {when.day:>2} {when:%H:%M:%S}"
            kind = r.random()
            if kind < 0.5:
                msg = (f"Failed password for invalid user {r.choice(('admin', 'test', 'oracle'))} "
                       f"from {_ip(r)} port {r.randint(1024, 65535)} ssh2")
            elif kind < 0.8:
                msg = (f"Accepted publickey for {r.choice(USERS)} from {r.choice(visitors)} port "
                       f"{r.randint(1024, 65535)} ssh2")
            else:
                msg = f"Connection closed by {_ip(r)} port {r.randint(1024, 65535)} [preauth]"
            line = f"{stamp} web1 sshd[{r.randint(1000, 99999)}]: {msg}\n"
            out = files["auth.log"]
        else:
            user = r.choice(USERS)
            record = {"ts": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                      "event": r.choice(("login", "download", "view")), "user": user,
                      "ip": r.choice(visitors), "success": r.random() > 0.03,
                      "bytes": r.randint(1000, 5_000_000), "service": "portal"}
            line = json.dumps(record) + "\n"
            out = files["portal.jsonl"]
        if r.random() < 0.0005:   # a burst of failures from one address
            ip = _ip(r)
            burst = "".join(
                f"{MONTHS[when.month - 1]} {when.day:>2} {when:%H:%M:%S} web1 sshd[1]: Failed password "
                f"for root from {ip} port {1000 + k} ssh2\n" for k in range(12))
            files["auth.log"].write(burst)
            written += len(burst)
            lines += 12
        out.write(line)
        written += len(line)
        lines += 1
    for fh in files.values():
        fh.close()
    return lines


def run_local(folder: Path, *, source: bool = False) -> dict[str, float]:
    """The local command as a child; its own CPU time and peak RSS (``wait4``: this child
    only, not the largest child so far). ``source``: with ``SECOPS_PURE_PYTHON=1``, the
    engine's modules run as Python source instead of compiled."""
    env = {**os.environ, "SECOPS_PURE_PYTHON": "1"} if source else None
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, "-m", "secops.cli", "anomaly", "detect", "--local",
                                 "--json", str(folder)], stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        out.seek(0)
        alerts = sum(1 for _ in out)
        err.seek(0)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"local command failed: {err.read()[-2000:]}")
    return {"cpu": usage.ru_utime + usage.ru_stime, "wall": wall, "rss_mb": usage.ru_maxrss / 1024,
            "alerts": float(alerts)}


# fail2ban's filter.d/sshd.conf failregex (normal mode), with its prefix, as Python regexes
_PREFIX = r"^(?P<date>\w{3} [ \d]\d \d\d:\d\d:\d\d) \S+ sshd(?:\[\d+\])?: "
FAIL2BAN = [re.compile(_PREFIX + p) for p in (
    r"(?:error: )?Authentication failure for .* from (?P<host>\S+)",
    r"(?:error: )?User not known to the underlying authentication module for .* from (?P<host>\S+)",
    r"Failed (?:password|publickey) for (?:invalid user )?.*? from (?P<host>\S+)(?: port \d+)?",
    r"ROOT LOGIN REFUSED FROM (?P<host>\S+)",
    r"[iI](?:llegal|nvalid) user .*? from (?P<host>\S+)(?: port \d+)?",
    r"User .+ from (?P<host>\S+) not allowed because not listed in AllowUsers",
    r"User .+ from (?P<host>\S+) not allowed because listed in DenyUsers",
    r"(?:error: )?maximum authentication attempts exceeded for .* from (?P<host>\S+)",
)]


def run_fail2ban(folder: Path) -> tuple[float, int, int]:
    """Every line of every file through the failregex set (fail2ban reads each log it is
    pointed at this way); returns (cpu seconds, lines, bans)."""
    start = time.process_time()
    windows: dict[str, deque[float]] = defaultdict(deque)
    bans = lines = 0
    for name in ("auth.log", "access.log", "portal.jsonl"):
        with (folder / name).open() as fh:
            for line in fh:
                lines += 1
                for rx in FAIL2BAN:
                    m = rx.match(line)
                    if m is None:
                        continue
                    when = time.mktime(time.strptime("2026 " + m.group("date"), "%Y %b %d %H:%M:%S"))
                    q = windows[m.group("host")]
                    q.append(when)
                    while q and q[0] < when - 600:
                        q.popleft()
                    if len(q) >= 5:
                        bans += 1
                        q.clear()
                    break
    return time.process_time() - start, lines, bans


def run_drain(folder: Path, limit: int) -> tuple[float, int]:
    from drain3 import TemplateMiner
    from drain3.template_miner_config import TemplateMinerConfig

    miner = TemplateMiner(config=TemplateMinerConfig())
    start = time.process_time()
    n = 0
    for name in ("auth.log", "access.log", "portal.jsonl"):
        with (folder / name).open() as fh:
            for line in fh:
                miner.add_log_message(line.rstrip("\n"))
                n += 1
                if n >= limit // 3 * (1 + ("auth.log", "access.log", "portal.jsonl").index(name)):
                    break
    return time.process_time() - start, n


def run_platform(lines: int, runs: int) -> None:
    """N lines through Redis windows and through memory windows, ``runs`` times each."""
    import itertools
    import secrets

    import redis

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from secops.anomaly import Detector, MemoryStore, RuleSet
    from secops.anomaly.reading import log_files, merged, open_log
    from secops.embedded import EmbeddedRedis
    from secops.services.anomaly_windows import RedisWindowStore

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "logs"
        folder.mkdir()
        generate(folder, max(1_000_000, lines * 200))
        events = list(itertools.islice(merged(open_log(p)[1] for p in log_files([folder])),
                                       lines))
        server = EmbeddedRedis(Path(tmp), secrets.token_hex(8))
        server.start()
        try:
            client = redis.Redis.from_url(server.url)
            shared, local = [], []
            for run in range(runs):
                client.flushdb()
                for store, out in ((RedisWindowStore(client, job=f"bench-{run}"), shared),
                                   (MemoryStore(), local)):
                    wall, cpu = time.perf_counter(), time.process_time()
                    detector = Detector(RuleSet.shipped(), store=store)
                    detector.feed_all(events)
                    detector.take_opened()
                    detector.take_closed(events[-1].ts)
                    out.append((time.perf_counter() - wall, time.process_time() - cpu))
        finally:
            server.stop()

    def fmt(values: list[float], unit: str) -> str:
        return (f"median {statistics.median(values):.2f} {unit} "
                f"(range {min(values):.2f}-{max(values):.2f}, {len(values)} runs)")

    print(f"{len(events)} events, shipped rules")
    print(f"Redis windows (platform): wall {fmt([w for w, _ in shared], 's')}, "
          f"CPU {fmt([c for _, c in shared], 's')}, "
          f"{statistics.median(len(events) / w for w, _ in shared):,.0f} lines/s wall")
    print(f"memory windows (local command, same run): wall {fmt([w for w, _ in local], 's')}, "
          f"{statistics.median(len(events) / w for w, _ in local):,.0f} lines/s wall")


# the fields the shipped rules read, one expression per generated format
FLOOR = {
    "access.log": re.compile(r'^(\S+) \S+ \S+ \[([^\]]+)\] "\S+ (\S+)[^"]*" (\d{3}) (\d+)', re.M),
    "auth.log": re.compile(r"^(\w{3} [ \d]\d \d\d:\d\d:\d\d) \S+ sshd\[\d+\]: (Failed|Accepted) "
                           r"\S+ for (invalid user )?(\S+) from (\S+)", re.M),
    "portal.jsonl": re.compile(r'^\{"ts": "([^"]+)", "event": "([^"]+)", "user": "([^"]+)", '
                               r'"ip": "([^"]+)", "success": (\w+), "bytes": (\d+)', re.M),
}


def run_breakdown(mb: float, runs: int) -> None:
    """Stage costs of the local engine and the share of lines each set of rules reads."""
    from collections import Counter

    started = time.process_time()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from secops.anomaly import Detector, RuleSet
    from secops.anomaly.reading import log_files, merged, merged_blocks, open_log, open_log_blocks
    from secops.anomaly.secrets import SecretFinder
    imported = time.process_time() - started
    from secops.cli.anomaly import GC_THRESHOLD

    gc.set_threshold(*GC_THRESHOLD)   # as the local command collects while it detects

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        n = generate(folder, int(mb * 1e6))
        shipped = RuleSet.shipped()
        plain = RuleSet([r for r in shipped.enabled if r.bucket.type != "secret"])
        stages: dict[str, list[float]] = defaultdict(list)
        uses: Counter[tuple[str, ...]] = Counter()
        alone: dict[str, list[float]] = defaultdict(list)
        per_file: dict[str, list[float]] = defaultdict(list)
        for run in range(runs):
            # as the command reads: a list per block, requests that only baselines read
            # as light tuples
            detector = Detector(plain)
            streams, parsing = [], 0.0
            for path in log_files([folder]):
                t = time.process_time()
                streams.append(list(open_log_blocks(path, light=detector.light_plan)[1]))
                spent = time.process_time() - t
                parsing += spent
                per_file[path.name].append(spent / sum(len(b) for b in streams[-1]))
            stages["read and parse (events, light requests)"].append(parsing)
            t = time.process_time()
            items = list(merged_blocks(iter(s) for s in streams))
            stages["merge by time"].append(time.process_time() - t)
            t = time.process_time()
            detector.feed_blocks(items)
            detector.finish()
            stages["detector, rules other than the credential one"].append(time.process_time() - t)
            del items, streams
            # every line an event, for the general steps and the rules alone
            events = list(merged(open_log(p)[1] for p in log_files([folder])))
            t = time.process_time()
            detector = Detector(plain, fast=False)
            detector.feed_all(events)
            detector.finish()
            stages["  the same on the general steps (fast=False)"].append(time.process_time() - t)
            t = time.process_time()
            finder = SecretFinder()
            raws = [e.raw for e in events]
            for i in range(0, len(raws), 512):
                finder.scan(raws[i:i + 512])
            stages["credential scan (DLP, batches of 512)"].append(time.process_time() - t)
            t = time.process_time()
            for name, rx in FLOOR.items():
                rx.findall((folder / name).read_text())
            stages["floor: read + one findall per file"].append(time.process_time() - t)
            for rule in plain.enabled:   # each rule alone over the same events
                t = time.process_time()
                detector = Detector([rule])
                detector.feed_all(events)
                detector.finish()
                alone[rule.id].append(time.process_time() - t)
            t = time.process_time()
            detector = Detector([])
            detector.feed_all(events)
            detector.finish()
            alone["(no rule: the loop and the sweeps)"].append(time.process_time() - t)
            if run == 0:
                for e in events:
                    uses[tuple(r.id for r in plain.enabled if r.predicate(e))] += 1
    print(f"log: {mb:.0f} MB, {n} lines; budget at 200,000 lines/s: 5.00 us/line")
    print(f"{'import the engine (once)':48s} {imported:6.2f} s  {imported / n * 1e6:6.2f} us/line")
    for name, values in stages.items():
        med = statistics.median(values)
        print(f"{name:48s} {med:6.2f} s  {med / n * 1e6:6.2f} us/line "
              f"(range {min(values):.2f}-{max(values):.2f} s, {len(values)} runs)")
    print("reading and parsing, per line of each file:")
    for name, values in per_file.items():
        print(f"  {name:46s} {statistics.median(values) * 1e6:6.2f} us/line")
    print("the detector with each rule alone (the loop and the sweeps included):")
    for name, values in sorted(alone.items(), key=lambda kv: -statistics.median(kv[1])):
        print(f"  {name:46s} {statistics.median(values) / n * 1e6:6.2f} us/line")
    print("share of lines by the rules that read them (every line also goes through the "
          "credential scan):")
    for ids, count in uses.most_common():
        print(f"  {count / n:6.1%}  {', '.join(ids) or '(no rule)'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=20.0)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--drain-lines", type=int, default=60_000)
    ap.add_argument("--platform-lines", type=int, default=0,
                    help="measure the platform's Redis windows on this many lines instead")
    ap.add_argument("--breakdown", action="store_true",
                    help="measure where the local engine's CPU time goes instead")
    args = ap.parse_args()
    # the package's bytecode cached, as an install leaves it (pip compiles it), whatever
    # PYTHONDONTWRITEBYTECODE says: no run pays for compiling the project's modules
    compileall.compile_dir(str(Path(__file__).resolve().parents[1] / "secops"), quiet=1)
    if args.breakdown:
        run_breakdown(args.mb, args.runs)
        return
    if args.platform_lines:
        run_platform(args.platform_lines, args.runs)
        return
    with tempfile.TemporaryDirectory() as tmp:
        big, small = Path(tmp) / "big", Path(tmp) / "small"
        big.mkdir()
        small.mkdir()
        lines = generate(big, int(args.mb * 1e6))
        small_lines = generate(small, int(args.mb * 1e6 / 4))
        print(f"log: {args.mb:.0f} MB, {lines} lines (and {small_lines} lines for the memory check)")
        ours, pure, f2b, drain = [], [], [], []
        # A child's peak RSS includes this process's size when the child starts (Linux
        # counts the image an exec replaces): the sizes are those of children started
        # before the peers below grow this process (their windows, Drain3's clusters).
        small_rss = run_local(small)["rss_mb"]
        rss = 0.0
        for _ in range(args.runs):
            res = run_local(big)
            ours.append(lines / res["cpu"])
            rss = rss or res["rss_mb"]
            pure.append(lines / run_local(big, source=True)["cpu"])
            cpu, n, bans = run_fail2ban(big)
            f2b.append(n / cpu)
            dcpu, dn = run_drain(big, args.drain_lines)
            drain.append(dn / dcpu)

        def fmt(values: list[float]) -> str:
            return (f"median {statistics.median(values):,.0f} lines/s "
                    f"(range {min(values):,.0f}-{max(values):,.0f}, {len(values)} runs)")

        print(f"secops anomaly detect --local (all rules, CPU): {fmt(ours)}; alerts {res['alerts']:.0f}")
        print(f"  the same, engine as Python source (SECOPS_PURE_PYTHON=1): {fmt(pure)}")
        print(f"fail2ban-style regex loop (sshd failregex only): {fmt(f2b)}; bans {bans}")
        print(f"Drain3 add_log_message ({args.drain_lines} lines): {fmt(drain)}")
        # the machine's speed drifts between runs: the ratio within a run is steadier
        ratios = [o / f for o, f in zip(ours, f2b, strict=True)]
        print(f"local command / fail2ban-style loop, same run: median "
              f"{statistics.median(ratios):.2f} (range {min(ratios):.2f}-{max(ratios):.2f})")
        print(f"peak RSS of the local command (first run): {rss:.0f} MB on {args.mb:.0f} MB, "
              f"{small_rss:.0f} MB on {args.mb / 4:.0f} MB")


if __name__ == "__main__":
    main()
