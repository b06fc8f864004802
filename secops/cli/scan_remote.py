"""``secops scan PATH...`` through the API: upload, wait for the workers, print results.

Files (directories walked recursively) are uploaded in batches to ``POST /v1/scans``,
streamed from disk; a batch refused as too large is retried file by file so only the
oversized file is reported. Progress (files uploaded, then scanned) is drawn on stderr
when it is a terminal. Output and exit status follow the local contract: one JSON
object per file (plus ``scan_id`` and ``cached``) or a table; 0 all clean, 1 anything
suspicious or malicious, 2 any file not scanned.
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import secrets
import sys
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import ExitStack
from typing import IO, Any, BinaryIO

import click

from secops.cli.client import ApiError, Client
from secops.scanning import iter_files

EXIT_CLEAN, EXIT_FOUND, EXIT_ERROR = 0, 1, 2
BATCH_FILES = 64  # the API takes up to 100 per request (scan_max_files_per_upload)
FIRST_BATCHES = (4, 8)
LAST_BATCHES = (8, 4)
BATCH_BYTES = 64 * 1024 * 1024
POLL_BATCH = 100
UPLOAD_READ = 1024 * 1024
UPLOAD_STREAMS = 2
POLL_MIN, POLL_MAX = 0.05, 1.0
POLL_WHILE_UPLOADING = 1.0


class _Progress:
    def __init__(self, total: int) -> None:
        self.total = total
        self.show = sys.stderr.isatty()

    def draw(self, stage: str, done: int) -> None:
        if self.show:
            width = 30
            filled = int(width * done / max(1, self.total))
            click.echo(f"\r{stage:<9} [{'#' * filled}{'.' * (width - filled)}] {done}/{self.total}",
                       err=True, nl=False)

    def clear(self) -> None:
        if self.show:
            click.echo("\r" + " " * 60 + "\r", err=True, nl=False)


def _batches(files: list[str]) -> list[list[str]]:
    """Upload batches of at most BATCH_FILES files and BATCH_BYTES bytes.

    A batch is one request, with a fixed cost to the API (about 7 ms of its CPU), so
    batches are large; the API splits each into jobs of its own size. The first ones
    are small (FIRST_BATCHES) so the workers start while the rest is sent, and so are
    the last ones (LAST_BATCHES): the final job is scanned by one worker process while
    the others have nothing left, so it should be short.
    """
    batches: list[list[str]] = [[]]
    size = 0
    ramp_down = len(files) - sum(LAST_BATCHES)
    if ramp_down < sum(FIRST_BATCHES):
        ramp_down = len(files)  # too few files for both ramps
    ends = set(itertools.accumulate(LAST_BATCHES, initial=ramp_down))
    for index, path in enumerate(files):
        try:
            length = os.path.getsize(path)
        except OSError:
            length = 0  # vanished or unreadable: its upload reports the error for it
        most = FIRST_BATCHES[len(batches) - 1] if len(batches) <= len(FIRST_BATCHES) else BATCH_FILES
        if batches[-1] and (len(batches[-1]) >= most or size + length > BATCH_BYTES
                            or index in ends):
            batches.append([])
            size = 0
        batches[-1].append(path)
        size += length
    return [b for b in batches if b]


def _disposition_name(path: str) -> bytes:
    """The file name for a Content-Disposition header, quoted as browsers do."""
    name = os.path.basename(path).translate({0x22: "%22", 0x0D: "%0D", 0x0A: "%0A"})
    return name.encode("utf-8", "surrogateescape")


class _MultipartFiles:
    """A multipart/form-data body streamed from files in large reads.

    httpx's encoder reads 64 KiB at a time and pushes each piece through the HTTP/1.1
    state machine; for large uploads that per-piece overhead was most of this command's
    CPU. The length is computed up front (the server gets a Content-Length), and a file
    whose size changes while it is sent fails the request instead of sending a body
    that disagrees with its length.
    """

    def __init__(self, handles: list[tuple[str, BinaryIO]]) -> None:
        self.boundary = secrets.token_hex(16).encode()
        self.parts: list[tuple[bytes, BinaryIO, int]] = []
        for path, handle in handles:
            head = (b"--" + self.boundary + b'\r\nContent-Disposition: form-data; name="file"; '
                    b'filename="' + _disposition_name(path) + b'"\r\n'
                    b"Content-Type: application/octet-stream\r\n\r\n")
            self.parts.append((head, handle, os.fstat(handle.fileno()).st_size))
        self.tail = b"--" + self.boundary + b"--\r\n"

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary.decode()}"

    def __len__(self) -> int:
        return sum(len(head) + size + 2 for head, _, size in self.parts) + len(self.tail)

    def __iter__(self) -> Iterator[bytes]:
        for head, handle, size in self.parts:
            yield head
            sent = 0
            while chunk := handle.read(UPLOAD_READ):
                sent += len(chunk)
                if sent > size:
                    break
                yield chunk
            if sent != size:
                raise OSError(errno.EIO, f"{handle.name} changed size while it was uploaded")
            yield b"\r\n"
        yield self.tail


def _upload(client: Client, paths: list[str], rescan: bool) -> list[dict[str, Any]]:
    with ExitStack() as stack:
        body = _MultipartFiles([(p, stack.enter_context(open(p, "rb"))) for p in paths])  # noqa: SIM115
        answer = client.request("POST", "/v1/scans", content=iter(body),
                                headers={"Content-Type": body.content_type,
                                         "Content-Length": str(len(body))},
                                params={"rescan": "true"} if rescan else None)
    return list(answer["scans"])


def _line(path: str, scan: dict[str, Any]) -> dict[str, Any]:
    return {"path": path, "sha256": scan["sha256"], "size": scan["size"], "mime": scan["mime"],
            "verdict": scan["verdict"],
            "findings": [{"id": f["rule_id"], "severity": f["severity"],
                          "description": f["description"], "location": f["location"]}
                         for f in scan["findings"]],
            "scan_id": scan["id"], "cached": scan["cached"]}


def _upload_batch(client: Client, batch: list[str], rescan: bool) -> list[tuple[str, dict[str, Any] | str]]:
    """Upload one batch: each path with its scan record, or the error that stopped it.

    A batch the API refuses (one file too large, say) is retried file by file, so only
    the file at fault is reported.
    """
    try:
        return list(zip(batch, _upload(client, batch, rescan), strict=True))
    except ApiError:
        out: list[tuple[str, dict[str, Any] | str]] = []
        for path in batch:
            try:
                out.append((path, _upload(client, [path], rescan)[0]))
            except ApiError as exc:
                out.append((path, exc.message))
            except OSError as exc:
                out.append((path, exc.strerror or type(exc).__name__))
        return out
    except OSError as exc:
        return [(path, exc.strerror or type(exc).__name__) for path in batch]


def run_remote(paths: tuple[str, ...], *, as_json: bool, rescan: bool, timeout: float,
               client: Client | None = None, out: IO[str] | None = None) -> int:
    """Upload on ``UPLOAD_STREAMS`` connections while polling for the results so far.

    Uploading, storing and scanning overlap: the API receives one batch while it
    commits another, and the workers scan the first batches meanwhile. Polling asks for
    the oldest ``POLL_BATCH`` unfinished scans (the queue is served in order, so newer
    ones are not done either): once a second while uploading, then quickly while results
    arrive, backing off when none do.
    """
    stream = out if out is not None else sys.stdout
    client = client or Client()
    files = list(iter_files(paths))
    progress = _Progress(len(files))
    pending: dict[str, str] = {}  # scan id -> path, in upload order
    results: dict[str, dict[str, Any] | str] = {}  # path -> scan or error text
    delay = POLL_MIN
    with ThreadPoolExecutor(UPLOAD_STREAMS, thread_name_prefix="upload") as pool:
        uploads = {pool.submit(_upload_batch, client, batch, rescan) for batch in _batches(files)}
        deadline: float | None = None  # set once every upload has been answered
        next_poll = time.monotonic() + POLL_WHILE_UPLOADING
        while uploads or pending:
            if uploads:
                # While uploading, results are only collected now and then (for the
                # progress display and a short pending list): each poll costs the API.
                done, uploads = wait(uploads, timeout=POLL_WHILE_UPLOADING if pending else None,
                                     return_when=FIRST_COMPLETED)
                for future in done:
                    for path, scan in future.result():
                        if isinstance(scan, str):
                            results[path] = scan
                        else:
                            pending[scan["id"]] = path
                if not uploads:
                    deadline = time.monotonic() + timeout
            if pending and (not uploads or time.monotonic() >= next_poll):
                next_poll = time.monotonic() + POLL_WHILE_UPLOADING
                finished = _poll(client, pending, results)
                # Quick while results arrive (a job's files finish together, a poll or
                # two apart), backing off slowly when none do.
                delay = POLL_MIN if finished else min(POLL_MAX, delay * 1.25)
                if pending and deadline is not None and time.monotonic() > deadline:
                    for scan_id, path in pending.items():
                        results[path] = f"timed out waiting for scan {scan_id}"
                    pending.clear()
                elif pending and not uploads:
                    time.sleep(delay)
            if uploads:
                progress.draw("uploaded", len(results) + len(pending))
            else:
                progress.draw("scanned", len(files) - len(pending))
    progress.clear()
    return _print(files, results, as_json, stream)


def _poll(client: Client, pending: dict[str, str], results: dict[str, dict[str, Any] | str]) -> int:
    """Collect the finished among the oldest pending scans; how many finished."""
    ids = list(itertools.islice(pending, POLL_BATCH))
    finished = 0
    answer = client.request("GET", "/v1/scans", params={"ids": ",".join(ids), "finished": "true"})
    for scan in answer["scans"]:
        scan_id = scan["id"]
        if scan["status"] == "complete":
            results[pending.pop(scan_id)] = scan
            finished += 1
        elif scan["status"] == "failed":
            results[pending.pop(scan_id)] = f"scan failed: {scan.get('error') or 'unknown'}"
            finished += 1
    return finished


def _print(files: list[str], results: dict[str, dict[str, Any] | str], as_json: bool,
           stream: IO[str]) -> int:
    status = EXIT_CLEAN
    if not as_json:
        stream.write(f"{'VERDICT':<10} {'SIZE':>12} {'MIME':<32} {'#':>3}  PATH\n")
    for path in files:
        outcome = results.get(path, "not scanned")
        if isinstance(outcome, str):
            status = EXIT_ERROR
            stream.write(json.dumps({"path": path, "error": outcome}) + "\n" if as_json else
                         f"{'ERROR':<10} {'-':>12} {'-':<32} {'-':>3}  {path}: {outcome}\n")
            continue
        line = _line(path, outcome)
        if line["verdict"] != "clean" and status == EXIT_CLEAN:
            status = EXIT_FOUND
        if as_json:
            stream.write(json.dumps(line) + "\n")
            continue
        cached = " (cached)" if line["cached"] else ""
        stream.write(f"{line['verdict'].upper():<10} {line['size']:>12} {line['mime'][:32]:<32} "
                     f"{len(line['findings']):>3}  {path}{cached}\n")
        for f in line["findings"]:
            where = f" @ {f['location']}" if f["location"] else ""
            stream.write(f"    [{f['severity']}] {f['id']}: {f['description']}{where}\n")
    stream.flush()
    return status
