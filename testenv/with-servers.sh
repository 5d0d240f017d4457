#!/usr/bin/env bash
# Runs a command with the servers the integration tests need:
# - RabbitMQ on 127.0.0.1:5672 (guest/guest): the running one, else an installed one started,
#   else the Debian package installed and started;
# - a CouchDB-API server (testenv/couchdb, PouchDB Server's parts, in memory) on a free
#   loopback port, stopped again when the command ends; or, when KZ_TEST_COUCH_URL is given
#   (e.g. http://admin:pw@127.0.0.1:5984, an Apache CouchDB 3 admin), that server instead.
# The command sees KZ_TEST_AMQP_URL and KZ_TEST_COUCH_URL.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

rabbitmqctl_bin() {
    # /usr/sbin's wrapper runs as the rabbitmq user; the one under /usr/lib run as root
    # would create a mismatched Erlang cookie.
    if [ -x /usr/sbin/rabbitmqctl ]; then echo /usr/sbin/rabbitmqctl; else command -v rabbitmqctl; fi
}

# The amqps test makes its certificates with openssl (Debian's openssl package).
ensure_openssl() {
    command -v openssl >/dev/null 2>&1 && return 0
    echo "with-servers: installing openssl" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
}

ensure_rabbitmq() {
    if port_open 5672; then return 0; fi
    if ! command -v rabbitmq-server >/dev/null 2>&1 && [ ! -x /usr/sbin/rabbitmq-server ]; then
        echo "with-servers: installing rabbitmq-server" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
    fi
    if port_open 5672; then return 0; fi
    echo "with-servers: starting rabbitmq-server" >&2
    local pidfile=/tmp/kz-endpoint-rabbitmq.pid
    RABBITMQ_PID_FILE="$pidfile" rabbitmq-server -detached
    "$(rabbitmqctl_bin)" wait "$pidfile" >/dev/null
    for _ in $(seq 1 60); do port_open 5672 && return 0; sleep 1; done
    echo "with-servers: RabbitMQ did not come up on 127.0.0.1:5672" >&2
    return 1
}

install_couch() {
    if [ ! -d "$here/couchdb/node_modules" ] || [ "$here/couchdb/package-lock.json" -nt "$here/couchdb/node_modules" ]; then
        echo "with-servers: installing the CouchDB-API test server (npm ci)" >&2
        (cd "$here/couchdb" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
        touch "$here/couchdb/node_modules"
    fi
}

start_couch() {
    couch_log="$(mktemp)"
    node "$here/couchdb/server.js" 0 >"$couch_log" 2>&1 &
    couch_pid=$!
    for _ in $(seq 1 100); do
        if grep -q '^listening ' "$couch_log"; then
            couch_port="$(sed -n 's/^listening //p' "$couch_log")"
            return 0
        fi
        if ! kill -0 "$couch_pid" 2>/dev/null; then break; fi
        sleep 0.1
    done
    echo "with-servers: the CouchDB-API server did not start:" >&2
    cat "$couch_log" >&2
    return 1
}

stop_couch() {
    if [ -n "${couch_pid:-}" ]; then kill "$couch_pid" 2>/dev/null || true; wait "$couch_pid" 2>/dev/null || true; fi
    rm -f "${couch_log:-}"
}

ensure_openssl
ensure_rabbitmq
# Installed even when KZ_TEST_COUCH_URL is given: some tests start servers of their own from it.
install_couch
export KZ_TEST_AMQP_URL="${KZ_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
if [ -n "${KZ_TEST_COUCH_URL:-}" ]; then
    # The credentials stay out of the log line.
    echo "with-servers: RabbitMQ at 127.0.0.1:5672, the given CouchDB at $(printf %s "$KZ_TEST_COUCH_URL" | sed -E 's#//[^@/]*@#//#')" >&2
else
    trap stop_couch EXIT
    start_couch
    export KZ_TEST_COUCH_URL="http://127.0.0.1:${couch_port}"
    echo "with-servers: RabbitMQ at 127.0.0.1:5672, CouchDB-API server at $KZ_TEST_COUCH_URL" >&2
fi
"$@"
