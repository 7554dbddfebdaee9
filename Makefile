# Telemetry Adapter: every developer and CI command. Each target creates .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHONPATH := $(CURDIR)/functions:$(CURDIR)

.PHONY: test lint migrate clean docs docs-serve

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

## docs: build the documentation site into build/site (strict: a broken link or anchor fails)
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

## docs-serve: preview the documentation site on http://127.0.0.1:8000, reloading on change
docs-serve: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve --dev-addr 127.0.0.1:8000

clean:
	rm -rf $(VENV) build cdk.out .pytest_cache .mypy_cache .ruff_cache

# --- infrastructure ---
.PHONY: synth deploy diff bundle cdk-cli
CDK := node_modules/.bin/cdk
# Context for deploy, e.g. make deploy CONTEXT='-c alarmEmail=ops@example.com -c batchSize=200'
CONTEXT ?=
synth deploy diff bundle: export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

## cdk-cli: the pinned AWS CDK CLI (package.json / package-lock.json) in node_modules
cdk-cli: $(CDK)
$(CDK): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

## bundle: pip-install requirements.txt for Lambda arm64 into the cache (synth does it on demand)
bundle: $(STAMP)
	$(PY) -c "from infra.bundling import dependencies_dir; print(dependencies_dir())"

## synth: synthesize the stack into cdk.out/ (cdk-nag findings fail it); offline, no AWS account
synth: $(STAMP) $(CDK)
	$(CDK) synth --quiet $(CONTEXT)

## diff: what a deploy would change
diff: $(STAMP) $(CDK)
	$(CDK) diff $(CONTEXT)

## deploy: deploy the stack with the current AWS credentials (context values: docs/configuration.md)
deploy: $(STAMP) $(CDK)
	$(CDK) deploy --require-approval broadening $(CONTEXT)

# --- local stack ---
.PHONY: run
## run: the whole pipeline on loopback (moto, embedded PostgreSQL, fleet, poller, consumer); ARGS='--help'
run: $(STAMP)
	$(PY) -m local_stack $(ARGS)

# --- benchmarks ---
.PHONY: bench bench-quick
BENCH_ARGS ?=
## bench: handler vs I/O floor vs naive, CPU, cold start, memory (docs/benchmarks.md), on loopback then with a modelled
## network (10 ms per PutRecords, 1 ms per SQL round trip); table, build/bench.json, docs/bench.png (~9 min)
bench: $(STAMP)
	$(PY) -m bench $(BENCH_ARGS)

## bench-quick: the same machinery, both modes, on small batches (about 20 s); chart to build/bench.png
bench-quick: $(STAMP)
	$(PY) -m bench --quick $(BENCH_ARGS)

# --- chaos ---
.PHONY: chaos
## chaos: fault injection through the real handler for DURATION seconds (default 600) -> build/chaos.json
chaos: $(STAMP)
	$(PY) -m chaos --duration $(if $(filter command line environment,$(origin DURATION)),$(DURATION),600) \
		--output build/chaos.json --log build/chaos.log
