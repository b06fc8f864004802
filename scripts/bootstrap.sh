#!/usr/bin/env bash
# Install what SecOps needs on a fresh Debian/Ubuntu machine: system packages and a
# virtualenv in .venv with the exact versions of requirements.lock (hash-checked), then
# the project itself. Safe to run again: each step is skipped when already done; the
# Python step runs again when pyproject.toml or a lock file changes.
# Refresh the lock with scripts/lock.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
# libmagic1 and yara: the scanning engine; docker-compose: the tests validate the compose
# file; binutils (ar) and cpio: the tests' reference readers and writers of those
# archives; pebble: the ACME server the certificate tests run against
APT_PACKAGES=(libmagic1 yara docker-compose binutils cpio pebble)
# Node.js and npm run the MDN HTTP Observatory test (tests/security/test_observatory.py);
# a Node.js that bundles its own npm (NodeSource) is used as it is.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    APT_PACKAGES+=(nodejs npm)
fi
# the console's browser tests drive Debian's Chromium through its WebDriver
APT_PACKAGES+=(chromium chromium-driver)
# the broker tests run the job queues on RabbitMQ too (scripts/services.sh starts it)
APT_PACKAGES+=(rabbitmq-server)
# a C compiler and the Python headers build the anomaly engine's compiled modules (setup.py)
APT_PACKAGES+=(gcc)
if ! "$PY" -c 'import os, sysconfig, sys
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
    APT_PACKAGES+=(python3-dev)
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "bootstrap: installing Debian packages: ${missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "bootstrap: please install these packages first: ${missing[*]}" >&2
        exit 2
    fi
fi

# The Observatory's package declares Node.js >= 20 (Debian 13 ships it; Debian 12 ships 18).
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
    echo "bootstrap: Node.js $node_major is older than the 20 the MDN Observatory test needs" >&2
fi

if [ ! -x .venv/bin/python ]; then
    echo "bootstrap: creating .venv" >&2
    "$PY" -m venv .venv
fi
stamp=.venv/.secops-installed
want=$(cat pyproject.toml requirements-pip.lock requirements.lock | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "bootstrap: installing Python packages into .venv (requirements.lock)" >&2
    .venv/bin/python -m pip install -q --require-hashes -r requirements-pip.lock
    .venv/bin/python -m pip install -q --require-hashes -r requirements.lock
    .venv/bin/python -m pip install -q --no-deps -e .
    .venv/bin/python -m pip check
    echo "$want" > "$stamp"
fi
# The anomaly engine's hot modules run compiled (setup.py); rebuild them when a source
# changed since the last build (until then the package imports that source instead).
fresh='import importlib.util as u, sys
s = u.spec_from_file_location("native", "secops/anomaly/_native.py"); m = u.module_from_spec(s)
s.loader.exec_module(m); found = m.compiled_modules()
sys.exit(0 if found and all(found.values()) else 1)'
if [ -z "${SECOPS_PURE_PYTHON:-}" ] && ! .venv/bin/python -c "$fresh"; then
    echo "bootstrap: compiling the anomaly engine (Cython)" >&2
    .venv/bin/python -m pip install -q --no-deps -e .
fi
