#!/usr/bin/env bash
# The container test (`make deploy-test`): builds the image, brings the compose stack up with
# two workers on free loopback ports, waits until every service is healthy, sends the README's
# request with `kz-endpoint request`, checks the reply against the offline build of the same
# request, checks that both workers answer from the shared queue, and tears the stack down.
# Needs a Docker engine, compose (the v2 plugin or docker-compose v1), curl and jq.
#   DEPLOY_TEST_TIMEOUT  seconds to wait for the stack to become healthy (default 300)
#   DEPLOY_TEST_KEEP=1   leave the stack running after the test (for a look around)
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
timeout_s="${DEPLOY_TEST_TIMEOUT:-300}"
file=deploy/docker-compose.yml
request=fixtures/requests/04-user-bob.json
workers=2

say() { echo "deploy-test: $*" >&2; }
die() { say "FAILED: $*"; exit 1; }

for tool in docker curl jq; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done
docker info >/dev/null 2>&1 || die "no Docker engine reachable (docker info fails)"
if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
elif command -v docker-compose >/dev/null; then
    compose=(docker-compose)
else
    die "neither the compose plugin (docker compose) nor docker-compose is installed"
fi

# Every image the stack and the build start from: present, or pulled within two minutes.
# An image that cannot be had is named, instead of a build or `up` that hangs.
images=$( { sed -n 's/^ *image: *//p' "$file"; sed -n 's/^FROM \([^ ]*\).*/\1/p' deploy/Dockerfile; } \
    | tr -d '"' | grep -v -x -e scratch -e 'kz-endpoint:.*' | sort -u)
for image in $images; do
    docker image inspect "$image" >/dev/null 2>&1 && continue
    say "pulling $image"
    if ! out=$(timeout 120 docker pull -q "$image" 2>&1); then
        die "the image $image is not on this machine and cannot be pulled: $(echo "$out" | tail -n 1)"
    fi
done

free_port() { # a free loopback TCP port
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null \
        || { local p; while :; do p=$((20000 + RANDOM % 20000)); (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }; done; }
}
http_first=$(free_port)
export COMPOSE_PROJECT_NAME="kz-endpoint-test-$$"
export PUBLISH_ADDRESS=127.0.0.1
export PUBLISH_HTTP_PORTS="$http_first-$((http_first + workers - 1))"
export PUBLISH_RABBITMQ_UI_PORT=$(free_port)
export PUBLISH_COUCHDB_PORT=$(free_port)
export RABBITMQ_PASSWORD="deploy-test-$RANDOM$RANDOM"
export COUCHDB_PASSWORD="deploy-test-$RANDOM$RANDOM"
dc() { "${compose[@]}" -f "$file" "$@"; }

teardown() {
    local rc=$?
    if [ "$rc" -ne 0 ]; then
        say "logs of the failed run:"
        dc logs --no-color --tail 40 >&2 2>&1 || true
    fi
    rm -f "${runlog:-}" "${buildlog:-}"
    if [ "${DEPLOY_TEST_KEEP:-}" = 1 ]; then
        say "stack left running: COMPOSE_PROJECT_NAME=$COMPOSE_PROJECT_NAME ${compose[*]} -f $file down -v"
    else
        dc down -v --remove-orphans >/dev/null 2>&1 || say "could not take the stack down ($COMPOSE_PROJECT_NAME)"
    fi
    exit "$rc"
}
trap teardown EXIT

say "building the image (${compose[*]})"
t=$SECONDS
buildlog=$(mktemp)
dc build kz-endpoint >"$buildlog" 2>&1 \
    || { tail -n 30 "$buildlog" >&2; die "the image build failed (run: ${compose[*]} -f $file build)"; }
say "image built in $((SECONDS - t)) s: $(docker image inspect -f '{{.Size}}' kz-endpoint:latest | awk '{printf "%.1f MB", $1/1e6}')"

# The image alone: `docker run kz-endpoint` replays the bundled captures.
selftest=$(timeout 60 docker run --rm kz-endpoint:latest 2>&1 | tail -n 1) || true
case "$selftest" in
    *" passed, 0 failed") say "docker run kz-endpoint: $selftest" ;;
    *) die "docker run kz-endpoint did not replay the captures: $selftest" ;;
esac

say "starting the stack ($COMPOSE_PROJECT_NAME, $workers workers)"
t=$SECONDS
# compose v1 waits in `up` for the dependencies' conditions (healthy, setup done): bounded too.
timeout "$timeout_s" "${compose[@]}" -f "$file" up -d --no-build --scale kz-endpoint=$workers >/dev/null 2>&1 \
    || die "compose up failed or took over ${timeout_s} s"
deadline=$((SECONDS + timeout_s))
while :; do
    pending=""
    for svc in rabbitmq couchdb kz-endpoint; do
        ids=$(dc ps -q "$svc")
        [ -n "$ids" ] || die "service $svc has no container"
        for id in $ids; do
            state=$(docker inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$id")
            case "$state" in
                "running healthy") ;;
                running*) pending="$pending $svc" ;;
                *) die "service $svc is $state" ;;
            esac
        done
    done
    setup=$(dc ps -a -q couchdb-setup)
    if [ -n "$setup" ]; then
        code=$(docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$setup")
        case "$code" in
            "exited 0") ;;
            exited*) die "couchdb-setup failed ($code): $(docker logs "$setup" 2>&1 | tail -n 3)" ;;
            *) pending="$pending couchdb-setup" ;;
        esac
    fi
    [ -z "$pending" ] && break
    [ "$SECONDS" -lt "$deadline" ] || die "not healthy after ${timeout_s} s:$pending"
    sleep 2
done
say "stack healthy in $((SECONDS - t)) s"

ports=()
for i in $(seq 1 $workers); do
    port=$(dc port --index "$i" kz-endpoint 9090 | sed 's/.*://')
    ready=$(curl -s --max-time 5 "http://127.0.0.1:$port/readyz") || true
    [ "$ready" = ready ] || die "worker $i /readyz on 127.0.0.1:$port answered: ${ready:-nothing}"
    ports+=("$port")
done
say "both workers ready on 127.0.0.1:${ports[*]}"

# The README's request, and what the offline builder answers for it over the same documents
# (no ecallmgr in the stack: every device's registration is unknown).
runlog=$(mktemp)
send() { # compose's own chatter goes to $runlog, shown when the request fails
    dc run --rm -T --no-deps kz-endpoint \
        request --amqp-url "amqp://kazoo:$RABBITMQ_PASSWORD@rabbitmq:5672/%2f" < "$request" 2>"$runlog" \
        || { cat "$runlog" >&2; return 1; }
}
reply=$(send) || die "kz-endpoint request failed: $reply"
expected=$(docker run --rm -i kz-endpoint:latest build --registration-unknown < "$request")
[ "$(jq -r '."Event-Name"' <<<"$reply")" = build_resp ] || die "the reply is not a build_resp: $reply"
[ "$(jq -S '.Endpoints' <<<"$reply")" = "$(jq -S '.Endpoints' <<<"$expected")" ] \
    || die "the live reply's legs differ from the offline build's: $(diff <(jq -S .Endpoints <<<"$expected") <(jq -S .Endpoints <<<"$reply") | head -n 20)"
say "the reply: build_resp with $(jq '.Endpoints | length' <<<"$reply") legs ($(jq -r '[.Endpoints[] | ."To-Username" // .Route] | join(", ")' <<<"$reply")), as the offline build"

# More requests: the workers compete on the shared queue, so each answers some.
for _ in 1 2 3; do send >/dev/null || die "kz-endpoint request failed"; done
for port in "${ports[@]}"; do
    n=$(curl -s --max-time 5 "http://127.0.0.1:$port/metrics" | sed -n 's/^kz_endpoint_requests_total{outcome="build_resp"} //p')
    [ "${n:-0}" -ge 1 ] || die "the worker on 127.0.0.1:$port answered no request (kz_endpoint_requests_total: ${n:-none})"
    say "worker on 127.0.0.1:$port answered $n of 4 requests"
done

say "passed in $((SECONDS - started)) s"
