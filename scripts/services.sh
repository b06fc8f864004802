#!/usr/bin/env bash
# Make sure the PostgreSQL server the tests use is up. The tests create and drop a
# database of their own on it, through the admin URL SECOPS_TEST_PG_URL (default
# postgresql+psycopg://postgres@127.0.0.1:5432/postgres). With SECOPS_TEST_PG_URL set,
# the server is someone else's: this only checks that it answers and starts nothing.
# Otherwise it starts the local cluster that listens on port 5432 (whatever its version
# and name, found with pg_lsclusters), or, as root, installs PostgreSQL from Debian with
# trust authentication on 127.0.0.1 and starts it. Redis is not started: every test
# session runs a private Redis server of its own. RabbitMQ (the broker tests; each session
# makes a vhost of its own with rabbitmqctl) is started when nothing answers on
# 127.0.0.1:5672, unless SECOPS_TEST_RABBITMQ_URL names another server.
set -uo pipefail

if [ -n "${SECOPS_TEST_PG_URL:-}" ]; then
    # libpq reads the URL without SQLAlchemy's driver suffix (postgresql+psycopg://).
    url=${SECOPS_TEST_PG_URL/+psycopg/}
    if pg_isready -q -d "$url"; then exit 0; fi
    echo "services: the PostgreSQL server of SECOPS_TEST_PG_URL does not answer" >&2
    exit 1
fi

PORT=5432
ready() { pg_isready -q -h 127.0.0.1 -p "$PORT" 2>/dev/null; }

# The cluster (version and name) configured for the port, or the first one there is.
find_cluster() {
    command -v pg_lsclusters >/dev/null || return 1
    pg_lsclusters --no-header 2>/dev/null | awk -v port="$PORT" '
        $3 == port { print $1, $2; found = 1; exit }
        NR == 1 { first = $1 " " $2 }
        END { if (!found && first != "") print first }'
}

if ! ready; then
    cluster=$(find_cluster)
    if [ -z "$cluster" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "services: installing PostgreSQL" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
        cluster=$(find_cluster)
        if [ -n "$cluster" ]; then
            read -r ver name <<<"$cluster"
            sed -i 's/^\(host.*127.0.0.1\/32\s*\)\S*$/\1trust/' "/etc/postgresql/$ver/$name/pg_hba.conf"
            pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" reload 2>/dev/null || true
        fi
    fi
    if [ -n "$cluster" ]; then
        read -r ver name <<<"$cluster"
        echo "services: starting PostgreSQL cluster $ver/$name" >&2
        pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start || true
    fi
    for _ in $(seq 1 30); do ready && break; sleep 1; done
fi
if ! ready; then
    echo "services: PostgreSQL is not reachable on 127.0.0.1:$PORT (set SECOPS_TEST_PG_URL to use another server)" >&2
    exit 1
fi

rabbit_ready() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
if [ -z "${SECOPS_TEST_RABBITMQ_URL:-}" ] && ! rabbit_ready; then
    if ! command -v rabbitmq-server >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "services: installing RabbitMQ" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq rabbitmq-server >/dev/null
    fi
    if command -v rabbitmq-server >/dev/null; then
        # loopback only: the node, its distribution port and epmd
        if [ "$(id -u)" = 0 ] && [ ! -s /etc/rabbitmq/rabbitmq.conf ]; then
            mkdir -p /etc/rabbitmq
            echo "listeners.tcp.local = 127.0.0.1:5672" > /etc/rabbitmq/rabbitmq.conf
            printf 'NODENAME=rabbit@localhost\nERL_EPMD_ADDRESS=127.0.0.1\n' > /etc/rabbitmq/rabbitmq-env.conf
        fi
        echo "services: starting RabbitMQ" >&2
        service rabbitmq-server start >/dev/null 2>&1 || rabbitmq-server -detached >/dev/null 2>&1 || true
        for _ in $(seq 1 60); do rabbit_ready && break; sleep 1; done
    fi
    if ! rabbit_ready; then
        echo "services: RabbitMQ is not reachable on 127.0.0.1:5672 (set SECOPS_TEST_RABBITMQ_URL to use another server)" >&2
        exit 1
    fi
fi
exit 0
