#!/bin/sh
# Loads the example account into CouchDB: every database folder of $FIXTURES/db (Kazoo's
# fixturedb layout) becomes a database with its documents, and every account database gets
# the `attributes` design document (the `owned` view the builder reads), whose index is then
# built by querying the view once (CouchDB builds a view's index on its first query; a build
# must not wait for that). Idempotent: a document that already exists is left as it is.
#   COUCH_URL  http://user:pass@host:5984 (an admin: it creates databases)
#   FIXTURES   the fixtures folder (default /fixtures)
set -eu
: "${COUCH_URL:?COUCH_URL is required}"
FIXTURES="${FIXTURES:-/fixtures}"
body="$(mktemp)"
trap 'rm -f "$body"' EXIT

# req METHOD PATH [FILE]: the HTTP status (000: no answer); the answer's body is in $body.
req() {
    if [ -n "${3:-}" ]; then
        curl -s -o "$body" -w '%{http_code}' --max-time 600 -X "$1" \
            -H 'Content-Type: application/json' --data-binary "@$3" "$COUCH_URL/$2" || true
    else
        curl -s -o "$body" -w '%{http_code}' --max-time 600 -X "$1" "$COUCH_URL/$2" || true
    fi
}

fail() { # fail WHAT CODE: CouchDB's answer (its reason) and exit
    echo "couchdb-setup: $1 answered ${2}: $(head -c 300 "$body")" >&2
    exit 1
}

put() { # put PATH [FILE]: accepting created (201/202) and already there (409/412)
    code=$(req PUT "$@")
    case "$code" in
        201|202|409|412) ;;
        *) fail "PUT /$1" "$code" ;;
    esac
}

# Wait for CouchDB to answer (up to a minute), then check the credentials once: a wrong
# password gets one 401, not a retry loop (CouchDB locks an account after repeated failures).
i=0
while [ "$(req GET _up)" = 000 ]; do
    i=$((i + 1))
    [ "$i" -lt 60 ] || { echo "couchdb-setup: CouchDB at ${COUCH_URL#*@} did not come up" >&2; exit 1; }
    sleep 1
done
code=$(req GET _session)
[ "$code" = 200 ] || fail "GET /_session" "$code"
if ! grep -q '"_admin"' "$body"; then
    echo "couchdb-setup: COUCH_URL must name a CouchDB admin (creating databases): $(cat "$body")" >&2
    exit 1
fi

# CouchDB 3 wants its system databases on a single node. Kazoo's `system_config` (empty here:
# Kazoo's defaults apply) also makes the worker's readiness check a real authenticated read:
# CouchDB answers 404 for a missing database even to a request without credentials.
put _users
put _replicator
put system_config
for dir in "$FIXTURES"/db/*/; do
    db=$(basename "$dir")
    put "$db"
    for doc in "$dir"docs/*.json; do
        [ -e "$doc" ] || continue
        put "$db/$(basename "$doc" .json)" "$doc"
    done
    case "$db" in
        account%2F*)
            put "$db/_design/attributes" "$FIXTURES/couchdb/attributes.json"
            code=$(req GET "$db/_design/attributes/_view/owned?limit=0")
            [ "$code" = 200 ] || fail "GET /$db/_design/attributes/_view/owned" "$code"
            ;;
    esac
    echo "couchdb-setup: $db loaded"
done
