#!/bin/sh
# Loads the example account into CouchDB: every database folder of $FIXTURES/db (Kazoo's
# fixturedb layout) becomes a database with its documents, and every account database gets
# the `attributes` design document (the `owned` view the builder reads). Idempotent: a
# document that already exists is left as it is.
#   COUCH_URL  http://user:pass@host:5984
#   FIXTURES   the fixtures folder (default /fixtures)
set -eu
: "${COUCH_URL:?COUCH_URL is required}"
FIXTURES="${FIXTURES:-/fixtures}"

put() { # put PATH [FILE]: PUT, accepting created (201/202) and already there (409/412)
    if [ -n "${2:-}" ]; then
        code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/json' \
            --data-binary "@$2" "$COUCH_URL/$1")
    else
        code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT "$COUCH_URL/$1")
    fi
    case "$code" in
        201|202|409|412) ;;
        *) echo "couchdb-setup: PUT /$1 answered $code" >&2; exit 1 ;;
    esac
}

# CouchDB 3 wants its system databases on a single node.
put _users
put _replicator
for dir in "$FIXTURES"/db/*/; do
    db=$(basename "$dir")
    put "$db"
    case "$db" in
        account%2F*) put "$db/_design/attributes" "$FIXTURES/couchdb/attributes.json" ;;
    esac
    for doc in "$dir"docs/*.json; do
        [ -e "$doc" ] || continue
        put "$db/$(basename "$doc" .json)" "$doc"
    done
    echo "couchdb-setup: $db loaded"
done
