"""Inventory throughput: the certificate engine against a sequential ``openssl s_client`` loop.

A server listens on ``--ports`` loopback ports and answers every TLS handshake (one EC
P-256 certificate from a throwaway CA; asyncio, ``--server-processes`` processes sharing
the ports). The engine checks
``--endpoints`` endpoints spread over those ports, each with its own SNI name, the way
``certs.scan`` does (``--concurrency`` threads, verification against the throwaway CA,
chain, hostname and expiry judged; the TLS 1.0/1.1 probe on or off). The same endpoints
are then visited one after another by ``openssl s_client`` (``--openssl-sample`` of them,
to keep a run short: the loop's rate is per endpoint, so the sample gives its rate).
Prints endpoints per second for both, their ratio, and the engine's peak RSS. With
``--renewals N`` it first times N sequential ACME issuances against a local pebble.

    .venv/bin/python benchmarks/certs.py [--endpoints 1000] [--ports 50] [--repeat 1]
        [--server-processes 1] [--engine-processes 1] [--renewals 0] [--ceiling]

``--ceiling`` also runs ``openssl s_time -new`` (full handshakes in a C loop, one at a
time per client, no process per connection) against the same server, one client and
one per core, and reads the client's and the server's CPU per handshake: what the
machine can do at all, whatever the client is written in.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import ssl
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

from secops.certs import Checker, Endpoint  # noqa: E402
from secops.certs import ca as ca_engine  # noqa: E402


def _serve(cert: str, key: str, ports: list[int], ready: multiprocessing.synchronize.Event) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.num_tickets = 0  # no client resumes: tickets would be server CPU spent for nothing

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async def main() -> None:
        servers = [await asyncio.start_server(handle, "127.0.0.1", p, ssl=ctx, backlog=1024,
                                              reuse_port=True, ssl_handshake_timeout=10) for p in ports]
        ready.set()
        await asyncio.gather(*(s.serve_forever() for s in servers))

    asyncio.run(main())


def _free_ports(count: int) -> list[int]:
    import socket
    socks = [socket.socket() for _ in range(count)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ceiling(port: int, root: Path, clients: int, seconds: int,
             servers: list[int]) -> tuple[float, float, float]:
    """``clients`` parallel ``openssl s_time -new`` loops (C, full handshakes, no process per
    connection) against one port: handshakes/s, their client CPU and the server's CPU
    per handshake (ms)."""
    server_before = sum(_cpu_seconds(pid) for pid in servers)
    start = time.perf_counter()
    procs = [subprocess.Popen(["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new",
                               "-time", str(seconds), "-CAfile", str(root)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
             for _ in range(clients)]
    outputs = [p.communicate()[0] for p in procs]
    elapsed = time.perf_counter() - start
    server_cpu = sum(_cpu_seconds(pid) for pid in servers) - server_before
    total, client_cpu = 0, 0.0
    for out in outputs:
        # "N connections in U.UUs; R connections/user sec, ..." (U: the client's user CPU)
        line = next(line for line in out.splitlines() if "connections/user sec" in line)
        count, user = int(line.split()[0]), float(line.split()[3].rstrip("s;"))
        total, client_cpu = total + count, client_cpu + user
    return total / elapsed, 1000 * client_cpu / max(total, 1), 1000 * server_cpu / max(total, 1)


def _check_part(job: tuple[str, int, bool, list[Endpoint]]) -> list[Any]:
    ca_file, workers, probe, part = job
    return list(Checker(ca_file=ca_file, timeout=10, workers=workers, probe_weak=probe).check(part))


def _check_in_processes(ca_file: str, workers: int, probe: bool, endpoints: list[Endpoint],
                        processes: int) -> list[Any]:
    parts = [endpoints[i::processes] for i in range(processes)]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        return [r for part in pool.map(_check_part, [(ca_file, workers, probe, p) for p in parts])
                for r in part]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoints", type=int, default=1000)
    parser.add_argument("--ports", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--openssl-sample", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--server-processes", type=int, default=1)
    parser.add_argument("--engine-processes", type=int, default=1,
                        help="split the endpoints over this many engine processes (each with "
                             "--concurrency threads)")
    parser.add_argument("--ceiling", action="store_true",
                        help="also measure a C handshake loop (openssl s_time -new) against the same "
                             "server, and the server's CPU per handshake")
    parser.add_argument("--ceiling-seconds", type=int, default=5)
    parser.add_argument("--renewals", type=int, default=0,
                        help="also time this many ACME issuances against a local pebble (DNS-01, "
                             "PEBBLE_VA_ALWAYS_VALID)")
    args = parser.parse_args()
    if args.renewals:
        _renewals(args.renewals)

    tmp = Path(tempfile.mkdtemp(prefix="secops-certs-bench-"))
    now = datetime.now(UTC)
    authority = ca_engine.create_authority("Bench", now=now)
    key = ec.generate_private_key(ec.SECP256R1())
    names = [f"svc{i}.bench.internal" for i in range(args.endpoints)]
    leaf = ca_engine.issue(authority.intermediate, authority.intermediate_key, key.public_key(),
                           common_name="bench", sans=["*.bench.internal"], profile="server", now=now,
                           lifetime=timedelta(days=60))
    (tmp / "server.pem").write_bytes(ca_engine.pem(leaf) + ca_engine.pem(authority.intermediate))
    (tmp / "server.key").write_bytes(ca_engine.key_pem(key))
    (tmp / "root.pem").write_bytes(ca_engine.pem(authority.root))
    ports = _free_ports(args.ports)
    servers = []
    for _ in range(args.server_processes):
        ready = multiprocessing.Event()
        server = multiprocessing.Process(target=_serve, daemon=True, args=(
            str(tmp / "server.pem"), str(tmp / "server.key"), ports, ready))
        server.start()
        servers.append(server)
        if not ready.wait(30):
            raise SystemExit("the TLS server did not start")
    endpoints = [Endpoint("127.0.0.1", ports[i % len(ports)], names[i]) for i in range(args.endpoints)]
    children_cpu = 0.0
    try:
        for run in range(args.repeat):
            for probe in (False, True):
                checker = Checker(ca_file=str(tmp / "root.pem"), timeout=10, workers=args.concurrency,
                                  probe_weak=probe)
                cpu_before = resource.getrusage(resource.RUSAGE_SELF)
                server_before = sum(_cpu_seconds(s.pid) for s in servers if s.pid)
                start = time.perf_counter()
                if args.engine_processes > 1:
                    results = _check_in_processes(str(tmp / "root.pem"), args.concurrency, probe, endpoints,
                                                  args.engine_processes)
                else:
                    results = list(checker.check(endpoints))
                elapsed = time.perf_counter() - start
                server_cpu = sum(_cpu_seconds(s.pid) for s in servers if s.pid) - server_before
                cpu_after = resource.getrusage(resource.RUSAGE_SELF)
                cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
                if args.engine_processes > 1:
                    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
                    cpu = kids.ru_utime + kids.ru_stime - children_cpu
                    children_cpu = kids.ru_utime + kids.ru_stime
                clean = sum(1 for r in results if not r.findings)
                if clean != len(endpoints):
                    bad = next(r for r in results if r.findings)
                    raise SystemExit(f"unexpected findings: {bad.to_dict()}")
                label = "engine, TLS 1.0/1.1 probe " + ("on " if probe else "off")
                print(f"run {run + 1} {label}: {len(results)} endpoints in {elapsed:.2f} s = "
                      f"{len(results) / elapsed:.0f} endpoints/s (all clean), engine CPU "
                      f"{1000 * cpu / len(results):.2f} ms per endpoint, server CPU "
                      f"{1000 * server_cpu / len(results):.2f} ms per endpoint")
                if probe:
                    engine_rate = len(results) / elapsed
            sample = endpoints[: args.openssl_sample]
            start = time.perf_counter()
            for ep in sample:
                done = subprocess.run(["openssl", "s_client", "-connect", f"{ep.host}:{ep.port}",
                                       "-servername", ep.sni or "", "-CAfile", str(tmp / "root.pem"),
                                       "-verify_return_error", "-brief"],
                                      stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
                if done.returncode != 0:
                    raise SystemExit(f"openssl s_client failed: {done.stderr.decode()[-500:]}")
            elapsed = time.perf_counter() - start
            openssl_rate = len(sample) / elapsed
            print(f"run {run + 1} openssl s_client loop: {len(sample)} endpoints in {elapsed:.2f} s = "
                  f"{openssl_rate:.0f} endpoints/s")
            print(f"run {run + 1} ratio engine (probe on)/openssl loop: {engine_rate / openssl_rate:.1f}")
            if args.ceiling:
                pids = [s.pid for s in servers if s.pid]
                cores = os.cpu_count() or 1
                for clients in sorted({1, cores}):
                    rate, client_ms, server_ms = _ceiling(ports[0], tmp / "root.pem", clients,
                                                          args.ceiling_seconds, pids)
                    print(f"run {run + 1} C handshake loop (openssl s_time -new, {clients} in parallel): "
                          f"{rate:.0f} handshakes/s = {rate / openssl_rate:.1f}x the s_client loop; "
                          f"client CPU {client_ms:.2f} ms, server CPU {server_ms:.2f} ms per handshake; "
                          f"CPU bound on {cores} cores {1000 * cores / (client_ms + server_ms):.0f}/s")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"engine process peak RSS: {rss:.0f} MB ({args.endpoints} endpoints, "
              f"{args.concurrency} threads, at most {2 * args.concurrency} in flight)")
    finally:
        for server in servers:
            server.terminate()
            server.join(5)
        for path in tmp.iterdir():
            path.unlink()
        os.rmdir(tmp)


def _renewals(count: int) -> None:
    """Sequential ACME issuances (new key, order, DNS-01, finalise, download) against pebble."""
    from pathlib import Path as _Path

    from secops.certs.acme_issuer import AcmeIssuer, make_csr
    from tests.certs.pebble import pebble

    class NoDns:
        kind = "dns-01"

        def present(self, *_: object) -> None:
            pass

        def cleanup(self, *_: object) -> None:
            pass

    with tempfile.TemporaryDirectory() as tmp, pebble(_Path(tmp), always_valid=True) as peb:
        account = ca_engine.key_pem(ec.generate_private_key(ec.SECP256R1())).decode()
        issuer = AcmeIssuer(peb.directory, account, verify=str(peb.root))
        start = time.perf_counter()
        for i in range(count):
            key = ec.generate_private_key(ec.SECP256R1())
            order = issuer.new_order(make_csr(ca_engine.key_pem(key), [f"r{i}.bench.example"]))
            chain = issuer.complete(order, NoDns())
            assert "BEGIN CERTIFICATE" in chain
        elapsed = time.perf_counter() - start
    print(f"ACME against pebble: {count} issuances in {elapsed:.2f} s = {60 * count / elapsed:.0f} "
          "renewals/min (sequential, one account)")


if __name__ == "__main__":
    main()
