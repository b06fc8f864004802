"""The compiled engine: built by the install, used only while its source is unchanged, and
giving exactly what the source gives."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import secops
from secops.anomaly import _native
from tests.anomaly.logsim import simulate

HOT = {"detector", "parsers", "reading", "store"}
NATIVE = {"_scan", "_jsonl"}   # Cython sources of their own (.pyx): the parsers' native readers
PURE = bool(os.environ.get("SECOPS_PURE_PYTHON"))


@pytest.mark.skipif(PURE, reason="SECOPS_PURE_PYTHON asks for the source")
def test_the_install_compiles_the_hot_modules_and_uses_them():
    assert _native.compiled_modules() == dict.fromkeys(HOT | NATIVE, True), (
        "the anomaly engine is not compiled: install a C compiler and the Python headers, "
        "then rerun scripts/bootstrap.sh (pip install -e .)")
    import secops.anomaly.detector as detector
    import secops.anomaly.parsers as parsers

    assert Path(detector.__file__).suffix == ".so"
    assert Path(parsers.__file__).suffix == ".so"


def _where(root: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    code = ("import json, secops.anomaly.detector as d, secops.anomaly.parsers as p;"
            "print(json.dumps({'detector': d.__file__, 'parsers': p.__file__,"
            " 'mark': getattr(d, 'MARK', None),"
            " 'scan': p._SCAN and p._SCAN.__file__,"
            " 'jsonl': p._JSONL and type(p._JSONL).__module__}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(root), **(env or {})})
    return json.loads(out.stdout)


@pytest.mark.skipif(PURE, reason="SECOPS_PURE_PYTHON asks for the source")
def test_an_edited_module_runs_from_its_source(tmp_path):
    """A source changed after the build (and only that one) is imported as source."""
    shutil.copytree(Path(secops.__file__).parent, tmp_path / "secops",
                    ignore=shutil.ignore_patterns("__pycache__", "*.c"))
    before = _where(tmp_path)
    assert before["detector"].endswith(".so") and before["parsers"].endswith(".so")
    with (tmp_path / "secops" / "anomaly" / "detector.py").open("a") as fh:
        fh.write("\nMARK = 'edited'\n")
    after = _where(tmp_path)
    assert after["detector"] == str(tmp_path / "secops" / "anomaly" / "detector.py")
    assert after["mark"] == "edited"
    assert after["parsers"].endswith(".so")
    assert after["scan"] == before["scan"] == str(
        next((tmp_path / "secops" / "anomaly").glob("_scan.*.so")))
    # without the manifest no compiled module is trusted; the switch forces the source too
    forced = _where(tmp_path, {"SECOPS_PURE_PYTHON": "1"})
    assert forced["parsers"].endswith("parsers.py")
    assert forced["scan"] is None
    (tmp_path / "secops" / "anomaly" / "_compiled.json").unlink()
    unlisted = _where(tmp_path)
    assert unlisted["parsers"].endswith("parsers.py") and unlisted["scan"] is None


@pytest.mark.skipif(PURE, reason="SECOPS_PURE_PYTHON asks for the source")
def test_an_edited_scanner_leaves_the_regular_expressions(tmp_path):
    """A _scan.pyx changed after the build is not used: the compiled parsers (their source
    unchanged) run their regular expressions, and the other modules stay compiled."""
    shutil.copytree(Path(secops.__file__).parent, tmp_path / "secops",
                    ignore=shutil.ignore_patterns("__pycache__", "*.c"))
    assert _where(tmp_path)["scan"] is not None
    with (tmp_path / "secops" / "anomaly" / "_scan.pyx").open("a") as fh:
        fh.write("\n# edited\n")
    after = _where(tmp_path)
    assert after["scan"] is None
    assert after["parsers"].endswith(".so") and after["detector"].endswith(".so")


@pytest.mark.skipif(PURE, reason="SECOPS_PURE_PYTHON asks for the source")
def test_an_edited_json_reader_leaves_the_parser(tmp_path):
    """A _jsonl.pyx changed after the build is not used: the JSON lines parser reads every
    line, and the scanner and the modules stay compiled."""
    shutil.copytree(Path(secops.__file__).parent, tmp_path / "secops",
                    ignore=shutil.ignore_patterns("__pycache__", "*.c"))
    assert _where(tmp_path)["jsonl"] == "secops.anomaly._jsonl"
    with (tmp_path / "secops" / "anomaly" / "_jsonl.pyx").open("a") as fh:
        fh.write("\n# edited\n")
    after = _where(tmp_path)
    assert after["jsonl"] is None and after["scan"] is not None
    assert after["parsers"].endswith(".so") and after["detector"].endswith(".so")
    assert _where(tmp_path, {"SECOPS_PURE_PYTHON": "1"})["jsonl"] is None


def _detect(folder: Path, paths: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "secops.cli", "anomaly", "detect", "--local", "--json",
         "--baseline-ips", str(folder / "baseline.json"), *paths],
        capture_output=True, text=True, env={**os.environ, **env})


def test_compiled_and_source_engines_give_the_same_alerts(tmp_path):
    """A labelled simulated day with every attack family: the same alerts, line for line,
    from the compiled modules with the native readers and from the source with the regular
    expressions and the ``json`` module."""
    if not PURE:
        built = _where(Path(secops.__file__).parent.parent)
        assert built["scan"] is not None and built["jsonl"] is not None
    pure = _where(Path(secops.__file__).parent.parent, {"SECOPS_PURE_PYTHON": "1"})
    assert pure["scan"] is None and pure["jsonl"] is None
    day = simulate(4242, per_family=1)
    paths = day.write(tmp_path)
    compiled = _detect(tmp_path, paths, {})
    source = _detect(tmp_path, paths, {"SECOPS_PURE_PYTHON": "1"})
    assert compiled.returncode == source.returncode == 1, (compiled.stderr, source.stderr)
    alerts = compiled.stdout.splitlines()
    rules = {json.loads(line)["rule"] for line in alerts}
    assert {"auth-failures-ip", "password-spraying", "credential-stuffing", "first-seen-ip",
            "http-404-scanning", "secret-in-log"} <= rules
    assert alerts == source.stdout.splitlines()
