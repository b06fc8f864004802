"""Contract of ``secops scan --local``: JSON lines, table, exit codes, per-file errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from secops.cli.scan import scan
from tests.scanning.corpus import EICAR, minimal_pe, pdf, zip_bytes

KEYS = ["path", "sha256", "size", "mime", "verdict", "findings"]
FINDING_KEYS = ["id", "severity", "description", "location"]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(scan, list(args))
    return result.exit_code, result.output


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    (tmp_path / "clean").mkdir()
    (tmp_path / "clean" / "a.txt").write_text("hello\n")
    (tmp_path / "clean" / "sub").mkdir()
    (tmp_path / "clean" / "sub" / "b.pdf").write_bytes(pdf())
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "eicar.com").write_bytes(EICAR)
    (tmp_path / "bad" / "outer.zip").write_bytes(
        zip_bytes([("inner/a.zip", zip_bytes([("eicar.com", EICAR)]))]))
    (tmp_path / "bad" / "photo.jpg").write_bytes(minimal_pe())
    return tmp_path


def test_json_lines_contract_and_exit_1(tree: Path) -> None:
    code, out = run("--local", "--json", str(tree / "bad"), str(tree / "clean"))
    assert code == 1
    lines = [json.loads(line) for line in out.splitlines()]
    assert [Path(line["path"]).name for line in lines] == [
        "eicar.com", "outer.zip", "photo.jpg", "a.txt", "b.pdf"]
    for line in lines:
        assert list(line) == KEYS
        assert isinstance(line["size"], int) and len(line["sha256"]) == 64
        assert line["verdict"] in ("clean", "suspicious", "malicious")
        for finding in line["findings"]:
            assert list(finding) == FINDING_KEYS
            assert finding["severity"] in ("info", "low", "medium", "high", "critical")
    by_name = {Path(line["path"]).name: line for line in lines}
    assert by_name["eicar.com"]["verdict"] == "malicious"
    assert by_name["eicar.com"]["findings"][0]["location"] is None
    assert by_name["outer.zip"]["findings"][0]["location"] == "outer.zip!inner/a.zip!eicar.com"
    assert by_name["photo.jpg"]["verdict"] == "suspicious"
    assert by_name["a.txt"] == {**by_name["a.txt"], "verdict": "clean", "findings": [],
                                "mime": "text/plain", "size": 6}


def test_all_clean_exits_0(tree: Path) -> None:
    code, out = run("--local", "--json", str(tree / "clean"))
    assert code == 0
    assert [json.loads(line)["verdict"] for line in out.splitlines()] == ["clean", "clean"]


def test_missing_and_unreadable_files_get_error_entries_and_run_goes_on(tree: Path) -> None:
    locked = tree / "clean" / "locked.txt"
    locked.write_text("x")
    locked.chmod(0)
    try:
        code, out = run("--local", "--json", str(tree / "gone.txt"), str(tree / "bad" /
                                                                         "eicar.com"),
                        str(locked))
    finally:
        locked.chmod(0o600)
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0] == {"path": str(tree / "gone.txt"), "error": "No such file or directory"}
    assert lines[1]["verdict"] == "malicious"
    if os.geteuid() != 0:
        assert lines[2] == {"path": str(locked), "error": "Permission denied"}
    else:  # root reads mode-000 files: the file is scanned like any other
        assert (lines[2]["path"], lines[2]["verdict"]) == (str(locked), "clean")
    assert len(lines) == 3
    assert code == 2


def test_table_output(tree: Path) -> None:
    code, out = run("--local", str(tree / "bad" / "outer.zip"), str(tree / "clean" / "a.txt"))
    assert code == 1
    assert out.splitlines()[0].split() == ["VERDICT", "SIZE", "MIME", "#", "PATH"]
    assert "MALICIOUS" in out and "CLEAN" in out
    assert "@ outer.zip!inner/a.zip!eicar.com" in out
    assert "2 files: 1 clean, 0 suspicious, 1 malicious, 0 error" in out


def test_usage_errors_exit_2(tree: Path) -> None:
    code, out = run("--json", str(tree))
    assert code == 2 and ("API" in out or "--local" in out)  # platform mode: needs the API
    assert run("--local", "--json")[0] == 2  # no PATH
    assert run("--local", "--bogus", str(tree))[0] == 2


def test_bad_rules_directory_is_an_error(tree: Path) -> None:
    assert run("--local", "--rules-dir", str(tree / "nope"), str(tree / "clean"))[0] == 2


def test_blocklist_option(tree: Path) -> None:
    import hashlib

    digests = tree / "block.txt"
    digests.write_text(hashlib.sha256(b"hello\n").hexdigest() + "\n")
    code, out = run("--local", "--json", "--blocklist", str(digests), str(tree / "clean"))
    assert code == 1
    assert json.loads(out.splitlines()[0])["findings"][0]["id"] == "hash.blocklist.sha256"


def test_subprocess_json_output(tree: Path) -> None:
    """The same command in a fresh interpreter: stdout holds only JSON lines."""
    code = ("import sys; from secops.cli.scan import scan; "
            "scan.main(sys.argv[1:], prog_name='secops scan')")
    proc = subprocess.run(
        [sys.executable, "-c", code, "--local", "--json", str(tree / "bad" / "eicar.com")],
        capture_output=True, text=True, timeout=60, check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["verdict"] == "malicious"


def test_md5_blocklist_still_applies_in_local_mode(tree: Path) -> None:
    import hashlib

    digests = tree / "md5.txt"
    digests.write_text(hashlib.md5(b"hello\n").hexdigest() + "\n")
    code, out = run("--local", "--json", "--blocklist", str(digests), str(tree / "clean"))
    assert code == 1
    assert json.loads(out.splitlines()[0])["findings"][0]["id"] == "hash.blocklist.md5"
