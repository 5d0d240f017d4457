#!/bin/sh
# The Erlang side's checks: compile (warnings as errors) the application and the 4.3 variant
# of kapi_endpoint, then the EUnit suites, the end-to-end one against the real RabbitMQ and a
# real `kz-endpoint serve` started here on a copy of fixtures/db under a fresh account id,
# with a queue of its own bound to that account only. Everything is removed afterwards.
# Usage: erlang/test/run-e2e.sh [path/to/kz-endpoint]   (RabbitMQ: KZ_TEST_AMQP_URL or local)
set -eu
erl_dir=$(cd "$(dirname "$0")/.." && pwd)
repo=$(cd "$erl_dir/.." && pwd)
bin=${1:-$repo/target/debug/kz-endpoint}
amqp_url=${KZ_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}

[ -x "$bin" ] || { echo "run-e2e: no worker binary at $bin (cargo build --bin kz-endpoint)" >&2; exit 1; }
plugins=$("$repo/testenv/erlang-deps.sh")
ERL_LIBS="$plugins${ERL_LIBS:+:$ERL_LIBS}"
export ERL_LIBS

hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
run_id=$(hex 6)
account=$(hex 16)
tmp=$(mktemp -d /tmp/kze-erlang-e2e.XXXXXX)
worker_pid=""
cleanup() {
    status=$?
    if [ -n "$worker_pid" ]; then
        kill "$worker_pid" 2>/dev/null || true
        wait "$worker_pid" 2>/dev/null || true
    fi
    if [ "$status" != 0 ] && [ -f "$tmp/worker.log" ]; then
        echo "run-e2e: the worker's log (last 40 lines):" >&2
        tail -n 40 "$tmp/worker.log" >&2
    fi
    rm -rf "$tmp"
    exit "$status"
}
trap cleanup EXIT INT TERM

echo "run-e2e: compiling (warnings as errors)" >&2
(cd "$erl_dir" && rebar3 compile)
erlc -Werror +warn_missing_spec +warn_export_vars -I "$erl_dir/include" -o "$tmp" \
    "$erl_dir/variants/4.3/kapi_endpoint.erl"
rm -f "$tmp/kapi_endpoint.beam"

# The fixture account under a fresh id, so no other test's binding or worker sees it.
fixture_id=4a686300000000000000000000000001
db_dir=$(printf 'account%%2F%s%%2F%s%%2F%s' "$(echo "$account" | cut -c1-2)" \
    "$(echo "$account" | cut -c3-4)" "$(echo "$account" | cut -c5-)")
cp -r "$repo/fixtures/db" "$tmp/db"
mv "$tmp/db/account%2F4a%2F68%2F6300000000000000000000000001" "$tmp/db/$db_dir"
mv "$tmp/db/accounts/docs/$fixture_id.json" "$tmp/db/accounts/docs/$account.json"
mv "$tmp/db/$db_dir/docs/$fixture_id.json" "$tmp/db/$db_dir/docs/$account.json"
find "$tmp/db" -name '*.json' -exec sed -i "s/$fixture_id/$account/g" {} +

queue="kze-erlang-e2e-$run_id"
echo "run-e2e: worker on queue $queue, binding endpoint.build.$account" >&2
"$bin" serve --amqp-url "$amqp_url" --fixturedb "$tmp/db" --queue "$queue" \
    --binding "endpoint.build.$account" --http-listen 127.0.0.1:0 \
    --registrar-deadline-ms 100 --node "kz-endpoint-erlang-e2e-$run_id@test" \
    >"$tmp/worker.log" 2>&1 &
worker_pid=$!

cd "$erl_dir"
KZE_AMQP_URL="$amqp_url" KZE_ACCOUNT_ID="$account" KZE_RUN_ID="$run_id" KZE_ERLANG_DIR="$erl_dir" \
    rebar3 eunit
kill -0 "$worker_pid" 2>/dev/null || { echo "run-e2e: the worker exited during the suite" >&2; exit 1; }
