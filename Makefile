# Every target creates or reuses .venv and installs what it needs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint fmt bench openapi migrate clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

run: $(STAMP)  ## serve the example agents on SQLite at http://127.0.0.1:8000 (offline)
	AGENT_SERVICE_MIGRATE_ON_START=$${AGENT_SERVICE_MIGRATE_ON_START:-true} $(BIN)/agent-service serve

test: $(STAMP)  ## the whole test suite (starts its own Postgres)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check app tests benchmarks
	$(BIN)/mypy app

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format app tests benchmarks

bench: $(STAMP)  ## benchmarks (not run by CI)
	$(BIN)/python benchmarks/runner_overhead.py
	$(BIN)/python benchmarks/session_store.py
	$(BIN)/python benchmarks/http_load.py
	$(BIN)/python benchmarks/live_relay.py
	$(BIN)/python benchmarks/memory_search.py --sqlite

openapi: $(STAMP)
	$(BIN)/agent-service openapi

migrate: $(STAMP)
	$(BIN)/agent-service migrate

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
