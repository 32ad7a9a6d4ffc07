# Every target creates or reuses .venv and installs what it needs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Every dependency (direct and transitive, test and dev tools included) is pinned in LOCK;
# the Docker image installs RUNTIME_LOCK (the runtime subset, same versions). After editing
# the dependencies in pyproject.toml run `make lock` (LOCK_ARGS=--upgrade takes new releases).
LOCK := requirements/lock.txt
RUNTIME_LOCK := requirements/runtime.txt
UV := uv==0.13.9
COMPILE = $(BIN)/uv pip compile --quiet --universal --python-version 3.11 \
	--custom-compile-command 'make lock' pyproject.toml
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml $(wildcard $(LOCK)) | cksum | cut -d' ' -f1)
# The frontend client libraries the protocol tests drive (pinned in tests/js/package-lock.json).
JS := tests/js
JS_STAMP := $(JS)/node_modules/.installed-$(shell cat $(JS)/package-lock.json | cksum | cut -d' ' -f1)

.PHONY: run test lint fmt bench openapi migrate lock clean dev-ui

$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-*
	touch $@

$(JS_STAMP): $(JS)/package.json $(JS)/package-lock.json
	cd $(JS) && npm ci --no-audit --no-fund --loglevel=error
	rm -f $(JS)/node_modules/.installed-*
	touch $@

lock:  ## pin every dependency again from pyproject.toml (LOCK_ARGS=--upgrade for new releases)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet '$(UV)'
	$(COMPILE) --extra dev $(LOCK_ARGS) -o $(LOCK)
	$(COMPILE) --constraint $(LOCK) -o $(RUNTIME_LOCK)

run: $(STAMP)  ## serve the example agents on SQLite at http://127.0.0.1:8000 (offline)
	AGENT_SERVICE_MIGRATE_ON_START=$${AGENT_SERVICE_MIGRATE_ON_START:-true} $(BIN)/agent-service serve

# Most of the suite's time is spent waiting on server processes and sockets: two pytest-xdist
# workers (one file each at a time, each with its own throwaway Postgres) halve it on 2 cores.
TEST_WORKERS ?= 2

dev-ui: $(STAMP)  ## download the ADK dev UI bundle once (PyPI) into the cache the browser test uses
	$(BIN)/agent-service devui fetch

test: $(STAMP) $(JS_STAMP) dev-ui  ## the whole test suite (starts its own Postgres; needs node, npm, chromium)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check app tests benchmarks setup.py
	$(BIN)/mypy app

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format app tests benchmarks setup.py

bench: $(STAMP)  ## benchmarks (not run by CI)
	$(BIN)/python benchmarks/runner_overhead.py
	$(BIN)/python benchmarks/session_store.py
	$(BIN)/python benchmarks/http_load.py
	$(BIN)/python benchmarks/live_relay.py
	$(BIN)/python benchmarks/stalled_reader.py
	$(BIN)/python benchmarks/memory_search.py --sqlite

openapi: $(STAMP)
	$(BIN)/agent-service openapi

migrate: $(STAMP)
	$(BIN)/agent-service migrate

clean:
	rm -rf $(VENV) $(JS)/node_modules .pytest_cache .ruff_cache .mypy_cache build dist *.egg-info
