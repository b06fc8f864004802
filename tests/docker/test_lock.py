"""The lock files pin every dependency pyproject.toml declares, with hashes, and the
runtime lock the image installs agrees with the lock bootstrap installs."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^ ;\\]+)", re.M)


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0]).lower()


def _pins(path: Path) -> dict[str, str]:
    text = path.read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text[text.index("\n", text.index("# ")) + 1:])
    pins = {}
    for entry in entries:
        match = PIN.match(entry.strip())
        if match:
            assert "--hash=sha256:" in entry, f"{path.name}: {match.group(1)} has no hash"
            pins[_name(match.group(1))] = match.group(2)
    return pins


def test_locks_pin_every_declared_dependency_and_agree():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    full = _pins(ROOT / "requirements.lock")
    runtime = _pins(ROOT / "requirements-runtime.lock")
    runtime_names = {_name(r) for r in project["dependencies"]}
    dev_names = {_name(r) for r in project["optional-dependencies"]["dev"]}
    assert runtime_names <= set(runtime), runtime_names - set(runtime)
    assert runtime_names | dev_names <= set(full), (runtime_names | dev_names) - set(full)
    assert {"pytest", "ruff", "mypy", "uv"}.isdisjoint(runtime)  # dev tools stay out of the image
    assert {name: full.get(name) for name in runtime} == runtime
    assert len(runtime) > len(runtime_names) and len(full) > len(runtime)


def test_installs_use_the_locks_with_hashes():
    bootstrap = (ROOT / "scripts" / "bootstrap.sh").read_text()
    assert "pip install -q --require-hashes -r requirements.lock" in bootstrap
    assert "--no-deps -e ." in bootstrap
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert "--require-hashes --wheel-dir /wheels -r requirements-runtime.lock" in dockerfile
    assert "--no-index --find-links /wheels" in dockerfile
