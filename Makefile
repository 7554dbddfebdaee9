# Telemetry Adapter: every developer and CI command. Each target creates .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHONPATH := $(CURDIR)/functions:$(CURDIR)

.PHONY: test lint migrate clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

## test: every test (unit, integration against PostgreSQL and moto, infrastructure)
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## lint: ruff and mypy
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

## migrate: apply the SQL migrations to the database DATABASE_URL names
migrate: $(STAMP)
	$(PY) -m telemetry_adapter.ledger.migrate

clean:
	rm -rf $(VENV) build cdk.out .pytest_cache .mypy_cache .ruff_cache

# --- infrastructure (issue 3) ---

# --- local stack (issue 4) ---
.PHONY: run
## run: the whole pipeline on loopback (moto, embedded PostgreSQL, fleet, poller, consumer); ARGS='--help'
run: $(STAMP)
	$(PY) -m local_stack $(ARGS)

# --- benchmarks (issue 6) ---
.PHONY: bench bench-quick
BENCH_ARGS ?=
## bench: handler vs I/O floor vs naive, CPU, cold start, memory (SPEC 10); table, build/bench.json, docs/bench.png
bench: $(STAMP)
	$(PY) -m bench $(BENCH_ARGS)

## bench-quick: the same machinery on small batches (about 15 s); chart to build/bench.png
bench-quick: $(STAMP)
	$(PY) -m bench --quick $(BENCH_ARGS)

# --- chaos (issue 7) ---
.PHONY: chaos
## chaos: fault injection through the real handler for DURATION seconds (default 600) -> build/chaos.json
chaos: $(STAMP)
	$(PY) -m chaos --duration $(if $(filter command line environment,$(origin DURATION)),$(DURATION),600) \
		--output build/chaos.json --log build/chaos.log
