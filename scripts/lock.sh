#!/usr/bin/env bash
# Refresh requirements.lock, the exact versions (with their hashes) that
# scripts/bootstrap.sh installs: run it after changing the dependencies in pyproject.toml,
# and commit both files together. It resolves against plain PyPI (not a local mirror or
# constraints file), for every Python version the project supports, so the lock installs
# the same on any fresh machine. Extra arguments go to `uv pip compile`, e.g.
# `scripts/lock.sh --upgrade-package fastapi` or `scripts/lock.sh --upgrade`.
set -euo pipefail
cd "$(dirname "$0")/.."
UV=.venv/bin/uv
[ -x "$UV" ] || scripts/bootstrap.sh
exec "$UV" pip compile pyproject.toml --extra dev \
    --universal --python-version 3.11 --generate-hashes \
    --index-url https://pypi.org/simple --no-config \
    --custom-compile-command scripts/lock.sh \
    --output-file requirements.lock "$@"
