"""How close the scanning goals can come on the machine it runs on: a measured bound.

``scan_throughput.py`` measures what the engine and the platform do. This measures, on
the same corpus and in the same run, what they cannot avoid doing: each piece of work
the checks require, alone, single-threaded, in CPU seconds (the steadier measure on a
shared machine), with none of our code or the frameworks' around it:

* the engine, per file: reading it; its SHA-256 (in the output contract); libmagic's
  MIME type of the first ``magic_bytes`` (the type check); yara-python matching the
  bundled rules over the file (the same bytes the ``yara`` tool scans); the members of
  zip and gzip files expanded by the standard library and matched too (the corpus has
  no other archives); not the PDF, OLE, polyglot or archive-safety checks;
* the platform, on top: ``secops scan``'s multipart body sent over HTTP to a uvicorn
  server that only drains it (client and server CPU); parsing it, hashing and
  encrypting every file into staging (``MultipartUpload``, the API's parser); making
  new content durable (``BlobStore.commit_all``: write, flush, rename, flush the
  directories); reading and decrypting it back (``BlobStore.read``, the worker);
  libmagic's description (the platform records it, the local command does not). The
  worker does not hash again, so the engine's SHA-256 is not counted twice.

Then, next to the measured ratios, it prints the best each could reach:

* engine: the ``yara`` tool's CPU seconds over the sum of the engine's pieces (no
  document or archive-safety checks, no Python of ours);
* platform: the local engine's wall time with N processes against the platform's
  pieces spread without loss over the machine's cores (no database, no Celery, no
  FastAPI, no waiting), for content already stored and for new content.

With the platform, it also runs it in halves: every file uploaded while the worker is
stopped, then the worker alone (the rate the platform would have with the API and the
client on cores of their own).

    .venv/bin/python benchmarks/scan_ceiling.py --dir /tmp/scancorpus [--repeat 3]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import scan_throughput as st  # noqa: E402
from _signals import exit_on_termination  # noqa: E402

from secops.api.uploads import MultipartUpload  # noqa: E402
from secops.cli.scan import default_workers  # noqa: E402
from secops.cli.scan_remote import _batches, _MultipartFiles  # noqa: E402
from secops.scanning import ScanConfig  # noqa: E402
from secops.scanning.engine import Scanner  # noqa: E402
from secops.scanning.filetype import identify  # noqa: E402
from secops.services.storage import BlobStore  # noqa: E402

RECEIVE_CHUNK = 64 * 1024  # what uvicorn hands the application at a time
DRAIN_APP = """
import sys, uvicorn

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"scans": []}'})

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            access_log=False)
"""


@contextmanager
def _clock(into: dict[str, float], name: str) -> Iterator[None]:
    """Adds this block's CPU seconds to ``into[name]``."""
    start = st._cpu()  # every thread of this process (the flush pool too)
    try:
        yield
    finally:
        into[name] = into.get(name, 0.0) + st._cpu() - start


def engine_pieces(files: list[Path], scanner: Scanner) -> dict[str, float]:
    cfg, rules = scanner.config, scanner.ruleset.rules
    out: dict[str, float] = {}
    contents = []
    with _clock(out, "read"):
        for path in files:
            with open(path, "rb") as handle:
                contents.append(handle.read())
    with _clock(out, "sha256"):
        for data in contents:
            hashlib.sha256(data).hexdigest()
    with _clock(out, "libmagic MIME"):
        for data in contents:
            identify(data, cfg.magic_bytes, describe=False, json_bytes=cfg.json_magic_bytes)
    with _clock(out, "yara-python match"):
        for data in contents:
            rules.match(data=data, timeout=cfg.match_timeout)
    with _clock(out, "archive members: expand and match"):
        for data in contents:
            for member in _members(data):
                rules.match(data=member, timeout=cfg.match_timeout)
    with _clock(out, "libmagic MIME and description"):
        for data in contents:
            identify(data, cfg.magic_bytes, describe=True, json_bytes=cfg.json_magic_bytes)
    return out


def _members(data: bytes) -> list[bytes]:
    """The members of a zip or gzip file as the standard library expands them (the
    corpus has no other archives): work the checks require, without our own code."""
    if data.startswith(b"PK\x03\x04"):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return [archive.read(info) for info in archive.infolist()]
    if data.startswith(b"\x1f\x8b"):
        return [gzip.decompress(data)]
    return []


def _bodies(files: list[Path]) -> list[tuple[bytes, bytes]]:
    """``secops scan``'s batches as (boundary, multipart body)."""
    out = []
    for batch in _batches([str(p) for p in files]):
        with ExitStack() as stack:
            body = _MultipartFiles([(p, stack.enter_context(open(p, "rb"))) for p in batch])
            out.append((body.boundary, b"".join(body)))
    return out


def store_pieces(files: list[Path], stores: Path) -> dict[str, float]:
    """The API's parser, hashing, encryption and commit, then the worker's read, on a new
    store (every file is new content)."""
    out: dict[str, float] = {}
    bodies = _bodies(files)
    root = Path(tempfile.mkdtemp(prefix="secops-ceiling-", dir=stores))
    try:
        store = BlobStore(root, secrets.token_bytes(32))
        stored: list[str] = []
        for boundary, body in bodies:
            upload = MultipartUpload(boundary, store=store, max_file_bytes=1 << 30,
                                     max_files=10_000)
            chunks = [body[i : i + RECEIVE_CHUNK] for i in range(0, len(body), RECEIVE_CHUNK)]
            with _clock(out, "parse, hash, encrypt"):
                for chunk in chunks:
                    upload.write(chunk)
                upload.finish()
            with _clock(out, "new content made durable"):
                store.commit_all(upload.files)
            stored += [blob.sha256 for blob in upload.files]
        with _clock(out, "read and decrypt"):
            for sha256 in stored:
                store.read(sha256)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return out


def transport_pieces(files: list[Path]) -> dict[str, float]:
    """``secops scan``'s uploads (its own code) to a uvicorn server that only reads them."""
    from secops.cli.client import ApiError, Client
    from secops.cli.scan_remote import _upload
    from secops.embedded import free_port

    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", DRAIN_APP, str(port)])
    out: dict[str, float] = {}
    try:
        client = Client(f"http://127.0.0.1:{port}", key="drain")  # the server ignores it
        deadline = time.monotonic() + 30
        while True:
            try:
                client.request("GET", "/")
                break
            except ApiError:
                if time.monotonic() > deadline:
                    raise RuntimeError("drain server did not start") from None
                time.sleep(0.05)
        before = st._tree_cpu(server.pid)
        with _clock(out, "send (client)"):
            for batch in _batches([str(p) for p in files]):
                _upload(client, batch, True)
        out["receive (uvicorn)"] = st._tree_cpu(server.pid) - before
    finally:
        server.terminate()
        server.wait(10)
    return out


def split_run(files: list[Path]) -> dict[str, float]:
    """The platform's two halves one after the other, on the benchmark's platform: every
    file uploaded with the worker stopped (SIGSTOP), then the worker alone until every
    scan is complete. Wall seconds of each, and the CPU of each side."""
    from concurrent.futures import ThreadPoolExecutor

    from secops.cli.client import Client
    from secops.cli.scan_remote import UPLOAD_STREAMS, _upload

    platform = st._platform
    assert platform is not None
    client = Client(platform.url, platform.key)
    api, worker = platform.named["api"].pid, platform.named["worker"].pid
    out: dict[str, float] = {}
    os.killpg(worker, signal.SIGSTOP)
    try:
        api_cpu, start = st._tree_cpu(api), time.perf_counter()
        with ThreadPoolExecutor(UPLOAD_STREAMS) as pool:
            batches = pool.map(lambda batch: _upload(client, batch, True),
                               _batches([str(p) for p in files]))
            ids = [scan["id"] for batch in batches for scan in batch]
        out["upload alone, wall"] = time.perf_counter() - start
        out["upload alone, API CPU"] = st._tree_cpu(api) - api_cpu
        worker_cpu = st._tree_cpu(worker)
    finally:
        os.killpg(worker, signal.SIGCONT)
    # Watched in the database, read-only (WAL readers take no lock): polling the API
    # would take CPU from the worker being measured.
    assert platform.tmp is not None
    database = sqlite3.connect(f"file:{platform.tmp / 'secops.db'}?mode=ro", uri=True)
    marks = ",".join("?" * len(ids))
    query = f"SELECT count(*) FROM scan_results WHERE status = 'pending' AND id IN ({marks})"  # noqa: S608 - placeholders only
    start = time.perf_counter()
    try:
        while database.execute(query, ids).fetchone()[0]:
            time.sleep(0.01)
    finally:
        database.close()
    out["worker alone, wall"] = time.perf_counter() - start
    out["worker alone, CPU"] = st._tree_cpu(worker) - worker_cpu
    return out


def _best(runs: list[dict[str, float]]) -> dict[str, float]:
    return {name: min(run[name] for run in runs) for name in runs[0]}


def _measure(fn: Callable[[], dict[str, float]], repeat: int) -> dict[str, float]:
    return _best([fn() for _ in range(repeat)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, required=True,
                        help="the corpus (generated here as scan_throughput does if empty)")
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--repeat", type=int, default=3, help="runs per piece; best counts")
    parser.add_argument("--data-dir", type=Path, help="where the store pieces write")
    parser.add_argument("--no-platform", action="store_true",
                        help="skip the real platform run (the bound is still printed)")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.data_dir is not None and not args.data_dir.is_dir():
        parser.error(f"--data-dir {args.data_dir}: not a directory")
    args.dir.mkdir(parents=True, exist_ok=True)
    if not any(args.dir.iterdir()):
        st.generate(args.dir, args.size_mb)
    files = sorted(p for p in args.dir.rglob("*") if p.is_file())
    count, size = st.corpus_stats(args.dir)
    os.sync()
    st.warm(args.dir)

    scanner = Scanner(ScanConfig(describe=False, md5=False))
    engine = _measure(lambda: engine_pieces(files, scanner), args.repeat)
    # The store of new content is made where the platform's is (a top directory).
    stores, own_group = st.stores_directory(Path(args.data_dir or tempfile.gettempdir()))
    store = _measure(lambda: store_pieces(files, stores), args.repeat)
    transport = _measure(lambda: transport_pieces(files), args.repeat)
    measured: dict[tuple[str, str], st.Measurement] = {}
    sections: list[st.Section] = [st.bench_yara, st.bench_local_inprocess]
    if not args.no_platform:
        sections.append(st.bench_platform)
    splits: list[dict[str, float]] = []
    for _ in range(args.repeat):
        st.run_round(args.dir, args, sections, measured)
        if st._platform is not None:
            os.sync()
            st.warm(args.dir)
            splits.append(split_run(files))
    if st._platform is not None:
        st._platform.stop()

    print(f"corpus: {count} files, {size / 1e6:.1f} MB; CPU seconds, best of {args.repeat}")
    description = engine["libmagic MIME and description"] - engine["libmagic MIME"]
    pieces = {**{k: v for k, v in engine.items() if k != "libmagic MIME and description"},
              "libmagic description": description, **transport, **store}
    for name, seconds in pieces.items():
        print(f"  {name:<36} {seconds:6.3f}")

    engine_floor = sum(engine[k] for k in ("read", "sha256", "libmagic MIME", "yara-python match",
                                           "archive members: expand and match"))
    tool = measured[("yara", "1 thread")]
    one = measured[("local-inprocess", "1 worker(s)")]
    print(f"engine, one thread: yara tool {tool.cpu_seconds:.2f}, engine "
          f"{one.cpu_seconds:.2f}, engine's required pieces {engine_floor:.2f}")
    print(f"  ratio engine/yara: measured {tool.cpu_seconds / one.cpu_seconds:.2f}, "
          f"best possible {tool.cpu_seconds / engine_floor:.2f}  (goal >= 0.5)")

    local = measured.get(("local-inprocess", f"{args.workers} worker(s)"), one)
    cores = os.cpu_count() or 1
    stored = (engine_floor - engine["sha256"] + description + transport["send (client)"]
              + transport["receive (uvicorn)"] + store["parse, hash, encrypt"]
              + store["read and decrypt"])
    new = stored + store["new content made durable"]
    for what, floor, note in (("content already stored", stored, st.PLATFORM),
                              ("new content", new, st.PLATFORM_NEW)):
        best = local.seconds / (floor / cores)
        platform = measured.get(("platform", note))
        actual = (f"measured {platform.files_per_s / local.files_per_s:.2f} "
                  f"(CPU {platform.cpu_seconds:.2f}), " if platform else "")
        print(f"platform/local files/s, {what}: {actual}best possible {best:.2f} "
              f"(required pieces {floor:.2f} CPU-s over {cores} cores against the local "
              f"engine's {local.seconds:.2f} s)  (goal >= 0.5)")
    if splits:
        split = _best(splits)
        print(f"platform in halves, content already stored: upload alone "
              f"{split['upload alone, wall']:.2f} s (API CPU {split['upload alone, API CPU']:.2f}), "
              f"then the worker alone {split['worker alone, wall']:.2f} s (CPU "
              f"{split['worker alone, CPU']:.2f}): the worker alone at "
              f"{local.seconds / split['worker alone, wall']:.2f} of the local engine's files/s")
    print(f"  platform store: {st.describe_store(stores, own_group)}")
    return 0


if __name__ == "__main__":
    exit_on_termination()
    raise SystemExit(main())
