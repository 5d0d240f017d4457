# kz-endpoint: the two commands a fresh machine needs are `make run` and `make test`.

CARGO ?= cargo
BIN := target/debug/kz-endpoint

.PHONY: run test build fmt lint deploy-check bench-build erlang-test

build:
	$(CARGO) build --locked

# The main job on the embedded default, with no servers: replay every captured request in
# fixtures/amqp/ through the builder (documents from fixtures/db/) and print the summary.
run: build
	$(BIN) replay fixtures/amqp

fmt:
	$(CARGO) fmt --all --check

lint:
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

# The integration tests need RabbitMQ and a CouchDB-API server: with-servers.sh provides both
# (starting or installing RabbitMQ when needed, and a PouchDB-based server on a free port).
test: fmt lint bench-build erlang-test
	testenv/with-servers.sh $(CARGO) test --locked --workspace

# The Erlang side (erlang/): compile with warnings as errors, then its EUnit suites, the
# end-to-end one against the real RabbitMQ and a real `kz-endpoint serve` (erlang/test/run-e2e.sh;
# testenv/erlang-deps.sh installs rebar3, jiffy and EUnit from Debian when missing).
erlang-test:
	$(CARGO) build --locked --bin kz-endpoint
	testenv/with-servers.sh erlang/test/run-e2e.sh $(BIN)

# The benchmarks and the load tool (testkit/) build (they are run by hand: docs/performance.md).
bench-build:
	$(CARGO) bench --locked --no-run
	$(CARGO) run --locked --quiet -p kz-endpoint-testkit --bin kz-endpoint-load -- --help >/dev/null

# What the container build does, as plain commands (no Docker engine on CI machines), and the
# compose file checked by the compose plugin when it is installed.
deploy-check:
	$(CARGO) build --release --locked --bin kz-endpoint
	target/release/kz-endpoint --version
	target/release/kz-endpoint serve --help >/dev/null
	target/release/kz-endpoint healthcheck --help >/dev/null
	@if docker compose version >/dev/null 2>&1; then \
		docker compose -f deploy/docker-compose.yml config -q && echo "compose file valid (compose v2)"; \
	elif docker-compose version >/dev/null 2>&1; then \
		docker-compose -f deploy/docker-compose.yml config -q && echo "compose file valid (compose v1)"; \
	else \
		echo "compose not installed: compose file checked by tests/deploy.rs"; \
	fi

# The container test, on a machine with a Docker engine: build the image, bring the stack up on
# free loopback ports, send the README's request, check the reply, tear it down.
.PHONY: deploy-test
deploy-test:
	deploy/deploy-test.sh
