"""Dependencies that parse untrusted input may not be installed below their patched
releases (published denial-of-service advisories), and the test command audits what is
installed."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
# the last release fixing a published advisory (GHSA/PYSEC), as of this writing
PATCHED = {"pypdf": Version("6.21.4"), "python-multipart": Version("0.0.31")}


def test_floors_exclude_versions_with_advisories():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = {Requirement(r).name: Requirement(r) for r in project["dependencies"]}
    for name, patched in PATCHED.items():
        specifier = requirements[name].specifier
        floors = [Version(s.version) for s in specifier if s.operator == ">="]
        assert floors and min(floors) >= patched, (name, str(specifier))
        assert Version(version(name)) in specifier


def test_the_test_command_runs_pip_audit():
    script = (ROOT / "scripts" / "test.sh").read_text()
    assert 'step "pip-audit" $V/pip-audit' in script
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["dev"]
    assert any(Requirement(r).name == "pip-audit" for r in dev)
