#!/bin/sh
# The Erlang side's test dependencies, from Debian's packages: rebar3, jiffy (kz_json's
# encoder), EUnit, and the RabbitMQ client library (shipped inside rabbitmq-server).
# Installs what is missing when run as root; otherwise says what is missing and fails.
# Idempotent: a machine that has everything is left alone. Prints the ERL_LIBS the tests need.
set -eu

need=""
command -v erl >/dev/null 2>&1 || need="$need erlang-base"
command -v rebar3 >/dev/null 2>&1 || need="$need rebar3"
have_lib() {
    erl -noshell -eval "case code:lib_dir($1) of {error, _} -> halt(1); _ -> halt(0) end." 2>/dev/null
}
if command -v erl >/dev/null 2>&1; then
    have_lib jiffy || need="$need erlang-jiffy"
    have_lib eunit || need="$need erlang-eunit"
    have_lib syntax_tools || need="$need erlang-syntax-tools"
else
    need="$need erlang-jiffy erlang-eunit erlang-syntax-tools"
fi
amqp_dir() { ls -d /usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins/amqp_client-* 2>/dev/null | tail -n 1; }
[ -n "$(amqp_dir)" ] || need="$need rabbitmq-server"

if [ -n "$need" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "erlang-deps: missing Debian packages:$need (run this script as root to install them)" >&2
        exit 1
    fi
    echo "erlang-deps: installing$need" >&2
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086
    if ! apt-get install -y --no-install-recommends $need >&2; then
        apt-get update >&2
        # shellcheck disable=SC2086
        apt-get install -y --no-install-recommends $need >&2
    fi
fi

command -v rebar3 >/dev/null 2>&1 || { echo "erlang-deps: rebar3 still missing" >&2; exit 1; }
have_lib jiffy || { echo "erlang-deps: jiffy still missing" >&2; exit 1; }
have_lib eunit || { echo "erlang-deps: eunit still missing" >&2; exit 1; }
plugins=$(dirname "$(amqp_dir)")
[ -d "$plugins" ] || { echo "erlang-deps: amqp_client not found under /usr/lib/rabbitmq" >&2; exit 1; }
echo "$plugins"
