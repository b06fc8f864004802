"""Baseline files with the local commands: ``--baseline`` leaves out what a file
suppresses, ``--update-baseline`` accepts a run's findings; expired entries do not apply."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from secops.cli.dlp import dlp
from secops.cli.scan import scan
from secops.dlp.baseline import BaselineError, parse
from tests.scanning.corpus import EICAR

JANE, JOHN = "jane.doe@example.org", "john.roe@example.net"


def _lines(output: str) -> dict[str, dict]:
    return {Path(d["path"]).name: d for d in map(json.loads, output.splitlines())}


def test_dlp_local_baseline_suppresses_accepted_values_on_their_paths(tmp_path):
    (tmp_path / "a.txt").write_text(f"owner {JANE}, deputy {JOHN}\n")
    baseline = tmp_path / ".secops-baseline.json"
    runner = CliRunner()
    accepted = runner.invoke(dlp, ["scan", "--local", "--json", "--baseline", str(baseline),
                                   "--update-baseline", "--reason", "team addresses",
                                   str(tmp_path / "a.txt")])
    assert accepted.exit_code == 0, accepted.output
    written = json.loads(baseline.read_text())
    assert sorted(e["detector"] for e in written["entries"]) == ["email", "email"]
    assert all(len(e["digest"]) == 64 and e["reason"] == "team addresses" for e in written["entries"])
    assert JANE not in baseline.read_text() and JOHN not in baseline.read_text()

    # JANE moved within a.txt stays accepted; JANE in another file and a new value in
    # a.txt are reported
    (tmp_path / "a.txt").write_text(f"deputy {JOHN}\nowner {JANE}\nnew {'max.mu@example.com'}\n")
    (tmp_path / "b.txt").write_text(f"from {JANE}\n")
    run = runner.invoke(dlp, ["scan", "--local", "--json", "--baseline", str(baseline),
                              str(tmp_path / "a.txt"), str(tmp_path / "b.txt")])
    assert run.exit_code == 1, run.output
    lines = _lines(run.output)
    text_a = (tmp_path / "a.txt").read_text()
    assert [(f["type"], f["start"]) for f in lines["a.txt"]["findings"]] == [
        ("email", text_a.index("max.mu"))]
    assert [(f["type"], f["start"]) for f in lines["b.txt"]["findings"]] == [("email", 5)]

    # an expired entry no longer applies
    for entry in written["entries"]:
        entry["expires_at"] = "2020-01-01T00:00:00+00:00"
    baseline.write_text(json.dumps(written))
    run = runner.invoke(dlp, ["scan", "--local", "--json", "--baseline", str(baseline),
                              str(tmp_path / "a.txt")])
    assert len(_lines(run.output)["a.txt"]["findings"]) == 3

    # a file that is not a baseline: usage error, exit 2
    baseline.write_text('{"format": "other"}')
    bad = runner.invoke(dlp, ["scan", "--local", "--baseline", str(baseline), str(tmp_path / "a.txt")])
    assert bad.exit_code == 2 and "not a baseline file" in bad.output
    assert runner.invoke(dlp, ["scan", "--local", "--update-baseline",
                               str(tmp_path / "a.txt")]).exit_code == 2


def test_scan_local_baseline_suppresses_by_sha256_and_rule(tmp_path):
    (tmp_path / "eicar.com").write_bytes(EICAR)
    (tmp_path / "other.com").write_bytes(EICAR + b" ")  # other content, also malicious
    baseline = tmp_path / "base.json"
    first = CliRunner().invoke(scan, ["--local", "--json", "--workers", "1", "--baseline",
                                      str(baseline), "--update-baseline", "--reason", "AV test",
                                      str(tmp_path / "eicar.com")])
    assert first.exit_code == 0, first.output
    entries = json.loads(baseline.read_text())["entries"]
    assert {e["family"] for e in entries} == {"scan"}
    assert "yara.SECOPS_EICAR_Test_File" in {e["detector"] for e in entries}
    run = CliRunner().invoke(scan, ["--local", "--json", "--workers", "1", "--baseline",
                                    str(baseline), str(tmp_path / "eicar.com"),
                                    str(tmp_path / "other.com")])
    assert run.exit_code == 1, run.output
    lines = _lines(run.output)
    assert (lines["eicar.com"]["verdict"], lines["eicar.com"]["findings"]) == ("clean", [])
    assert lines["other.com"]["verdict"] == "malicious"
    refused = CliRunner().invoke(scan, ["--baseline", str(baseline), str(tmp_path / "eicar.com")])
    assert refused.exit_code == 2 and "--local" in refused.output


@pytest.mark.parametrize("entry, message", [
    ({"family": "dlp", "reason": "r"}, "names its detector"),
    ({"family": "dlp", "detector": "email", "reason": "r"}, "needs a path_pattern"),
    ({"family": "scan", "detector": "x", "reason": "r"}, "sha256"),
    ({"family": "dlp", "detector": "email", "digest": "zz", "reason": "r"}, "64 lower-case hex"),
    ({"family": "dlp", "detector": "email", "path_pattern": "*"}, "reason is required"),
    ({"family": "other", "reason": "r"}, "family"),
])
def test_malformed_baseline_entries_are_refused_with_the_reason(entry, message):
    text = json.dumps({"format": "secops-baseline", "version": 1, "salt": "ab" * 16,
                       "entries": [entry]})
    with pytest.raises(BaselineError, match=message):
        parse(text)


def test_a_baseline_refuses_entries_past_what_it_can_load_again():
    """Adding stops at MAX_ENTRIES with a clear error, so no file is written that the next
    run would refuse; an entry already there (whatever its reason) is still a no-op."""
    from secops.dlp.baseline import MAX_ENTRIES, Baseline

    base = Baseline()
    for i in range(MAX_ENTRIES):
        assert base.add({"family": "scan", "sha256": f"{i:064x}", "reason": "accepted"})
    assert not base.add({"family": "scan", "sha256": f"{7:064x}", "reason": "another reason"})
    with pytest.raises(BaselineError, match=f"at most {MAX_ENTRIES} entries"):
        base.add({"family": "scan", "sha256": "f" * 64, "reason": "one too many"})
    assert len(parse(base.to_json()).entries) == MAX_ENTRIES
