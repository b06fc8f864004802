"""The benchmark scripts still run end to end on a clean checkout, at a tiny scale.

Their figures are not checked (speed is measured, never asserted in tests); what is
checked is that each script starts what it compares, finishes every piece of work it
counts and prints its comparison. The jobs pipeline benchmark once failed with "connection
refused" for weeks because the API it starts had gained a required secret.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path) -> dict[str, str]:
    # A clean environment: none of the test session's SECOPS_* settings leak into the
    # platform the script starts (it makes its own secrets, store and database).
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECOPS_")}
    env["TMPDIR"] = str(tmp_path)
    return env


def _run(args: list[str], tmp_path: Path, status: int = 0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=_env(tmp_path), capture_output=True,
                          text=True, timeout=240, stdin=subprocess.DEVNULL)
    assert proc.returncode == status, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc


def test_jobs_pipeline_benchmark_completes_every_job(tmp_path):
    out = _run(["benchmarks/jobs_pipeline.py", "--jobs", "40"], tmp_path).stdout
    completed = next(line for line in out.splitlines() if line.startswith("secops  completed"))
    assert completed.rstrip().endswith("failed 0"), out
    assert "ratio secops/celery completed" in out


def test_scan_throughput_benchmark_runs_every_section(tmp_path):
    corpus = tmp_path / "corpus"
    out = _run(["benchmarks/scan_throughput.py", "--size-mb", "2", "--repeat", "1",
                "--dir", str(corpus)], tmp_path).stdout
    for line in ("local-inprocess", "local-cli", "yara ", "API + 2-process worker, new",
                 "ratio local/yara (all cores each)", "ratio platform/local files/s, new content",
                 "ratio platform/local files/s, content already stored"):
        assert line in out, out
    assert any(corpus.iterdir())


def test_scan_throughput_small_file_set_runs(tmp_path):
    corpus = tmp_path / "small"
    out = _run(["benchmarks/scan_throughput.py", "--set", "small", "--files", "12",
                "--repeat", "1", "--sections", "local-inprocess,yara", "--dir", str(corpus)],
               tmp_path).stdout
    assert "ratio local/yara (all cores each)" in out, out
    assert len([p for p in corpus.rglob("*") if p.is_file()]) == 12


def test_scan_ceiling_benchmark_prints_each_bound(tmp_path):
    out = _run(["benchmarks/scan_ceiling.py", "--size-mb", "2", "--repeat", "1",
                "--dir", str(tmp_path / "corpus")], tmp_path).stdout
    for line in ("ratio engine/yara: measured", "content already stored: measured",
                 "new content: measured", "platform in halves"):
        assert line in out, out


def test_dlp_benchmark_says_how_to_install_its_peer_or_runs(tmp_path):
    try:
        import presidio_analyzer  # noqa: F401
    except ImportError:
        proc = _run(["benchmarks/dlp_throughput.py", "--mb", "0.2"], tmp_path, status=2)
        assert "pip install -e '.[bench]'" in proc.stderr
        assert "Traceback" not in proc.stderr
        return
    out = _run(["benchmarks/dlp_throughput.py", "--mb", "0.5", "--presidio-mb", "0.05",
                "--dense-mb", "0.2", "--presidio-dense-mb", "0.01"], tmp_path).stdout
    for case in ("[sparse]", "[dense]"):
        assert f"presidio) {case}" in out, out
    assert "presidio without PhoneRecognizer) [dense]" in out, out


def _processes_mentioning(text: str) -> list[int]:
    """Processes whose command line, environment or working directory holds ``text`` (the
    run's TMPDIR). Redis rewrites its title over its environment, but works in its
    directory."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            seen = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes() + \
                os.readlink(entry / "cwd").encode()
        except OSError:
            continue  # gone, or not ours to read
        if text.encode() in seen:
            found.append(int(entry.name))
    return found


def test_a_terminated_benchmark_stops_what_it_started(tmp_path):
    proc = subprocess.Popen([sys.executable, "benchmarks/jobs_pipeline.py", "--jobs", "100000"],
                            cwd=ROOT, env=_env(tmp_path), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        # stopped while its clients submit (a job has run): the submits it has queued
        # and not sent are dropped, not waited for
        deadline = time.monotonic() + 120
        while not any("job succeeded" in log.read_text(errors="replace")
                      for log in tmp_path.rglob("worker.log")):
            assert proc.poll() is None and time.monotonic() < deadline, "the benchmark never started"
            time.sleep(0.2)
        started = {Path(f"/proc/{pid}/comm").read_text().strip()
                   for pid in _processes_mentioning(str(tmp_path)) if pid != proc.pid}
        assert "redis-server" in started and len(started) >= 2, started  # Redis, API, worker
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
    deadline = time.monotonic() + 20
    while (left := _processes_mentioning(str(tmp_path))) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, "left running after SIGTERM"
    assert not list(tmp_path.iterdir()), "temporary files left behind"
