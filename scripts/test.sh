#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what it needs (scripts/bootstrap.sh),
# makes sure PostgreSQL answers (scripts/services.sh: the local cluster, or the server of
# SECOPS_TEST_PG_URL when set) and RabbitMQ too (started when nothing answers on 5672), then runs linters, type checks, the import contracts,
# bandit, the secrets scan and pytest. Each pytest session starts its own Redis server
# and creates (then drops) its own PostgreSQL database. Exits non-zero when anything
# fails. Arguments go to pytest, e.g. scripts/test.sh tests/api -x.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh || exit 2
scripts/services.sh || exit 2

status=0
step() {
    local name=$1; shift
    echo "== $name" >&2
    if ! "$@"; then
        echo "== $name FAILED" >&2
        status=1
    fi
}
V=.venv/bin
step "ruff" $V/ruff check secops tasks tests benchmarks migrations
step "mypy" $V/mypy secops tasks
step "import contracts" $V/lint-imports
step "bandit" $V/bandit -q -ll -r secops tasks
step "detect-secrets" scripts/secrets-scan.sh
# Known vulnerabilities in what is installed (PyPI's advisory data; needs HTTPS to pypi.org,
# or SECOPS_PIP_AUDIT_SERVICE=osv for api.osv.dev). The project itself is not on PyPI.
step "pip-audit" $V/pip-audit --progress-spinner off --skip-editable \
    --vulnerability-service "${SECOPS_PIP_AUDIT_SERVICE:-pypi}"
# Tests run in parallel sessions (pytest-xdist), one per core unless SECOPS_TEST_WORKERS
# says otherwise; each session starts its own Redis server and PostgreSQL database.
step "pytest" $V/python -m pytest -p no:cacheprovider -n "${SECOPS_TEST_WORKERS:-auto}" \
    --durations=15 "$@"
exit $status
