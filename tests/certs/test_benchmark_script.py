"""benchmarks/certs.py still runs end to end at a tiny scale (figures are not asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_certs_benchmark_checks_every_endpoint_and_compares(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "benchmarks/certs.py", "--endpoints", "20", "--ports", "3",
                           "--openssl-sample", "3", "--concurrency", "4", "--engine-processes", "2",
                           "--ceiling", "--ceiling-seconds", "1"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "probe off: 20 endpoints in" in out and "probe on : 20 endpoints in" in out
    assert "(all clean)" in out and "openssl s_client loop: 3 endpoints" in out
    assert "ratio engine (probe on)/openssl loop:" in out and "peak RSS" in out
    assert "C handshake loop (openssl s_time -new, 1 in parallel)" in out and "CPU bound on" in out
