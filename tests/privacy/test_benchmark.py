"""The privacy benchmark still runs end to end at a tiny scale (figures are not checked)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def test_privacy_benchmark_runs_on_sqlite(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECOPS_")} | {"TMPDIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "benchmarks/privacy.py", "--users", "300", "--runs", "2", "--no-postgres"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert "sqlite: map check warnings: 2" in lines  # the two free-text columns
    assert "sqlite+fts5: map check warnings: 0" in lines  # with the FTS5 tables it recommends
    for label in ("sqlite", "sqlite+fts5"):
        for what in ("export, no mentions", "export with mentions", "erase+verify"):
            assert any(line.startswith(f"{label}: {what} ") and "runs 2" in line for line in lines), lines


def test_privacy_requests_benchmark_finishes_every_request(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECOPS_")} | {"TMPDIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "benchmarks/privacy_requests.py", "--requests", "6", "--users", "200"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "completed 6, verified erasures 6, other 0" in proc.stdout.splitlines()
