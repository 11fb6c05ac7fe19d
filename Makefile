# The two set-up commands are `make run` and `make test`; everything else is for contributors.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.8
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := $(HOME)/.local/bin/uv
endif
RUN := $(UV) run --locked

.PHONY: help uv sync js-deps web browser-deps deploy-deps run test lint fmt typecheck contracts-check schemas unit integration infra-up infra-down infra-status bench chaos clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

uv: ## install uv if this machine has none
	@command -v $(UV) >/dev/null 2>&1 || python3 -m pip install --user --quiet "uv==$(UV_VERSION)"

sync: uv ## install every workspace package and dev tool from uv.lock
	@$(UV) sync --locked --all-packages --quiet

js-deps: ## install the pinned JavaScript test client (tests/js/package-lock.json); needs Node.js 20+ with npm
	@command -v npm >/dev/null 2>&1 || { echo "make js-deps: npm not found; install Node.js 20+ with npm (tests/js drives the gateway with socket.io-client)" >&2; exit 1; }
	@npm ci --no-audit --no-fund --prefix tests/js

web: ## build the web client when its sources changed (clients/web: npm ci, tsc --noEmit, vite build into dist/); needs Node.js 20+ with npm
	@command -v npm >/dev/null 2>&1 || { echo "make web: npm not found; install Node.js 20+ with npm (the web client is built with Vite)" >&2; exit 1; }
	@node clients/web/scripts/build-if-changed.mjs

browser-deps: ## install Debian's chromium for the browser end-to-end tests when /usr/bin/chromium is missing, and a colour emoji font (reactions in screenshots) when there is none
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; \
		else echo "make browser-deps: /usr/bin/chromium is missing and this is not root and has no sudo; install the chromium package" >&2; exit 1; fi; \
		command -v apt-get >/dev/null 2>&1 || { echo "make browser-deps: /usr/bin/chromium is missing and apt-get is not available; install Chromium at /usr/bin/chromium" >&2; exit 1; }; \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium || { $$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; } \
			|| { echo "make browser-deps: installing chromium failed" >&2; exit 1; }; \
		test -x /usr/bin/chromium || { echo "make browser-deps: chromium installed but /usr/bin/chromium is still missing" >&2; exit 1; }; \
	fi
	@if command -v fc-list >/dev/null 2>&1 && ! fc-list | grep -qi "color emoji" && command -v apt-get >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends fonts-noto-color-emoji >/dev/null 2>&1 \
			|| echo "make browser-deps: no colour emoji font (fonts-noto-color-emoji); screenshots show emoji as boxes, the tests do not depend on it" >&2; \
	fi

deploy-deps: ## promtool (Debian's prometheus package) for the alert rules' checks when it is missing; kubectl or kustomize must be installed for the manifests'
	@if ! command -v promtool >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; \
		else echo "make deploy-deps: promtool is missing and this is not root and has no sudo; install the prometheus package" >&2; exit 1; fi; \
		command -v apt-get >/dev/null 2>&1 || { echo "make deploy-deps: promtool is missing and apt-get is not available; install promtool (Prometheus)" >&2; exit 1; }; \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null || { $$SUDO apt-get update >/dev/null && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null; } \
			|| { echo "make deploy-deps: installing prometheus (for promtool) failed" >&2; exit 1; }; \
	fi
	@command -v kubectl >/dev/null 2>&1 || command -v kustomize >/dev/null 2>&1 || { echo "make deploy-deps: neither kubectl nor kustomize is installed; deploy/tests renders deploy/k8s with one of them" >&2; exit 1; }

run: sync web ## the whole product in one process on embedded defaults; prints the URL
	@$(RUN) chat up

test: sync js-deps web browser-deps deploy-deps lint typecheck contracts-check ## everything CI runs: lint, types, contract schemas, unit + integration tests (web client: Biome, Vitest)
	@npm run --prefix clients/web lint
	@npm test --prefix clients/web
	@$(RUN) pytest

unit: sync deploy-deps ## unit tests only (no servers)
	@$(RUN) pytest libs services apps clients deploy tests/codebase tests/bench

integration: sync js-deps web browser-deps ## integration tests only (real PostgreSQL, Kafka, Mongo-wire server)
	@$(RUN) pytest tests/integration

lint: sync ## ruff lint and format check
	@$(RUN) ruff check .
	@$(RUN) ruff format --check .

fmt: sync ## apply ruff fixes and formatting
	@$(RUN) ruff check --fix .
	@$(RUN) ruff format .

typecheck: sync ## mypy --strict over every package
	@$(RUN) mypy libs services apps clients deploy tests bench

contracts-check: sync ## committed JSON Schemas, AsyncAPI documents (Kafka, Socket.IO) and client limits match the code
	@$(RUN) python -m chat_contracts.schema_export --check
	@$(RUN) python -m chat_contracts.asyncapi --out docs/asyncapi/kafka.json --check
	@$(RUN) python -m chat_gateway.asyncapi --out docs/asyncapi/socketio.json --check
	@$(RUN) python -m chat_contracts.limits --protocol docs/protocol.md --web clients/web/src/limits.ts --check
	@$(RUN) python clients/web/scripts/generate_types.py --check

schemas: sync ## regenerate the committed JSON Schemas, the AsyncAPI documents and the client limits from the contracts
	@$(RUN) python -m chat_contracts.schema_export
	@$(RUN) python -m chat_contracts.asyncapi --out docs/asyncapi/kafka.json
	@$(RUN) python -m chat_gateway.asyncapi --out docs/asyncapi/socketio.json
	@$(RUN) python -m chat_contracts.limits --protocol docs/protocol.md --web clients/web/src/limits.ts
	@$(RUN) python clients/web/scripts/generate_types.py

infra-up: sync ## start PostgreSQL 18, Kafka 4 (KRaft) and SecantusDB on this machine
	@$(RUN) python -m chat_localinfra up

infra-down: sync ## stop them
	@$(RUN) python -m chat_localinfra down

infra-status: sync ## show what runs and where
	@$(RUN) python -m chat_localinfra status

bench: sync js-deps ## benchmarks that print figures (under 30 min): auth timing, idle memory and fan-out vs plain python-socketio, message throughput in both modes, history pages, the Mongo-wire soak (bench/, docs/benchmarks.md)
	@$(RUN) python bench/auth_enumeration_timing.py
	@$(RUN) python -m bench.scenarios
	@$(RUN) python -m bench.throughput
	@BENCH_HISTORY_MESSAGES=$${BENCH_HISTORY_MESSAGES:-200000} $(RUN) python -m bench.history
	@$(RUN) python -m bench.soak

chaos: sync ## the reliability tests at full size: 10,000 fuzzed events, 30 s outages, longer gateway-restart runs; prints the recovery times
	@CHAT_FUZZ_EVENTS=10000 CHAT_OUTAGE_SECONDS=30 CHAT_CHAOS_MESSAGES=200 CHAT_CRASH_KILLS=5 CHAT_CRASH_CLIENTS=50 \
		CHAT_CRASH_ROOMS=20 CHAT_CRASH_MESSAGES_PER_CLIENT=200 CHAT_FAILOVER_ROOMS=20 CHAT_FAILOVER_CLIENTS=40 CHAT_MODEL_EXAMPLES=200 CHAT_OPENAPI_EXAMPLES=50 $(RUN) pytest -p no:cacheprovider -s -o timeout=1800 \
		tests/integration/test_socket_fuzz.py tests/integration/test_store_outages.py \
		tests/integration/test_kafka_restart.py tests/integration/test_gateway_restarts.py \
		tests/integration/test_rolling_restarts.py tests/integration/test_model_stateful.py \
		tests/integration/test_openapi_fuzz.py \
		tests/integration/test_messages_crash.py tests/integration/test_messages_failover.py

clean: ## remove caches (not data: see infra-down and .infra/)
	rm -rf .mypy_cache .ruff_cache .pytest_cache
