# kz-endpoint: the two commands a fresh machine needs are `make run` and `make test`.

CARGO ?= cargo
FIXTUREDB ?= fixtures/db
# The bundled example account: the "Sales" phone (user_1002) is registered, the others not.
REGISTERED ?= user_1002@acme.sip.example.com
BIN := target/debug/kz-endpoint

.PHONY: run test build fmt lint

build:
	$(CARGO) build --locked

# The main job on the embedded default: every bundled example request through the builder,
# against the bundled fixture database, printing each reply.
run: build
	@for req in fixtures/requests/*.json; do \
		echo "== $$req"; \
		$(BIN) build --fixturedb $(FIXTUREDB) --registered $(REGISTERED) < $$req || exit 1; \
	done

fmt:
	$(CARGO) fmt --check

lint:
	$(CARGO) clippy --locked --all-targets -- -D warnings

# The integration tests need RabbitMQ and a CouchDB-API server: with-servers.sh provides both
# (starting or installing RabbitMQ when needed, and a PouchDB-based server on a free port).
test: fmt lint
	testenv/with-servers.sh $(CARGO) test --locked
