from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from secops.cli import cli
from tests.certs.pki import Pki


@pytest.fixture(scope="session")
def pki() -> Pki:
    return Pki.create()


@pytest.fixture()
def root_file(pki: Pki, tmp_path: Path) -> str:
    return str(pki.write_root(tmp_path))


def run_check(*args: str) -> tuple[int, list[dict], str]:
    """``secops certs check --local --json ARGS``: exit code, parsed lines, stderr."""
    result = CliRunner().invoke(cli, ["certs", "check", "--local", "--json", "--timeout", "2", *args])
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return result.exit_code, lines, result.stderr


def ids(line: dict) -> list[tuple[str, str]]:
    return [(f["id"], f["severity"]) for f in line["findings"]]
