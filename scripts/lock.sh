#!/usr/bin/env bash
# Refresh requirements.lock, the exact versions (with their hashes) that
# scripts/bootstrap.sh installs, and requirements-runtime.lock, the runtime part of it that
# docker/Dockerfile installs: run it after changing the dependencies in pyproject.toml,
# and commit the three files together. It resolves against plain PyPI (not a local mirror or
# constraints file), for every Python version the project supports, so the lock installs
# the same on any fresh machine. Extra arguments go to `uv pip compile`, e.g.
# `scripts/lock.sh --upgrade-package fastapi` or `scripts/lock.sh --upgrade`.
set -euo pipefail
cd "$(dirname "$0")/.."
UV=.venv/bin/uv
[ -x "$UV" ] || scripts/bootstrap.sh
compile() {
    "$UV" pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes \
        --index-url https://pypi.org/simple --no-config \
        --custom-compile-command scripts/lock.sh "$@"
}
# Everything bootstrap installs: the project's dependencies and its dev tools.
compile --extra dev --output-file requirements.lock "$@"
# The runtime dependencies alone, at the same versions, for the container image.
compile --constraint requirements.lock --output-file requirements-runtime.lock
