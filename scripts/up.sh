#!/usr/bin/env bash
# Run the whole platform on its embedded defaults: SQLite and an embedded Redis in ./var,
# the API on 127.0.0.1:8000, a worker, beat and Flower on 127.0.0.1:5555. Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/secops up "$@"
