# Telemetry Adapter: every developer and CI command. `make` alone lists them.
# Flags go in ARGS for every target: make run ARGS='--duration 60', make test ARGS='tests/unit -x'.
# Each target but help and clean creates .venv on first use.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
READY := $(VENV)/.project-on-path
# Only from the command line (make run ARGS='...'): an ARGS exported for something else is ignored.
ARGS :=

.PHONY: help test lint migrate clean docs docs-serve

## help: list the targets (the default goal); flags for any target go in ARGS='...'
help:
	@echo "usage: make <target> [ARGS='<flags>']   (ARGS='--help' shows a tool's own flags)"
	@echo
	@awk '/^## [a-z-]+: / { name = $$2; sub(/:$$/, "", name); sub(/^## [a-z-]+: /, ""); printf "  %-12s %s\n", name, $$0 }' $(MAKEFILE_LIST)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# The project's folders on the venv's import path, in a .pth file: `.venv/bin/python -m chaos --help`
# (and bench, local_stack, the tests) work from the repository root with nothing exported.
$(READY): $(STAMP)
	$(PY) -c 'import pathlib, sys, sysconfig; pathlib.Path(sysconfig.get_path("purelib"), "telemetry_adapter.pth").write_text("\n".join(sys.argv[1:]) + "\n")' "$(CURDIR)/functions" "$(CURDIR)"
	touch $@

## test: every test (unit, integration against PostgreSQL and moto, infrastructure); ARGS: pytest's
test: $(READY)
	$(PY) -m pytest $(PYTEST_ARGS) $(ARGS)

## lint: ruff (check and format) and mypy --strict; ARGS: paths (default: everything)
lint: $(READY)
	$(VENV)/bin/ruff check $(or $(ARGS),.)
	$(VENV)/bin/ruff format --check $(or $(ARGS),.)
	$(VENV)/bin/mypy $(or $(ARGS),.)

## migrate: apply the ledger's SQL migrations to the database DATABASE_URL (or DB_*) names; ARGS='--dry-run' lists them
migrate: $(READY)
	@$(PY) -m telemetry_adapter.ledger.migrate $(ARGS)

## docs: build the documentation site into build/site (strict: a broken link or anchor fails)
docs: $(READY)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict $(ARGS)

## docs-serve: preview the documentation site on http://127.0.0.1:8000, reloading on change
docs-serve: $(READY)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve --dev-addr 127.0.0.1:8000 $(ARGS)

## clean: delete .venv and every build output
clean:
	rm -rf $(VENV) build cdk.out .pytest_cache .mypy_cache .ruff_cache

# --- infrastructure ---
.PHONY: synth deploy diff bundle lock cdk-cli
CDK := node_modules/.bin/cdk
synth deploy diff bundle: export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

## cdk-cli: install the pinned AWS CDK CLI (package-lock.json) into node_modules
cdk-cli: $(CDK)
$(CDK): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

## bundle: install requirements-lambda.lock for Lambda arm64 into the cache (synth does it on demand)
bundle: $(READY)
	$(PY) -c "from infra.bundling import dependencies_dir; print(dependencies_dir())"

## lock: re-lock the Lambda asset's dependencies (requirements.txt -> requirements-lambda.lock, with hashes)
lock: $(READY)
	$(PY) -m infra.lock $(ARGS)

## synth: synthesize the stack into cdk.out/ (no AWS account; the first run downloads the CDK CLI and the Lambda's dependencies); ARGS: cdk's, e.g. '-c stage=prod'
synth: $(READY) $(CDK)
	$(CDK) synth --quiet $(CONTEXT) $(ARGS)

## diff: what a deploy would change; ARGS: cdk's, e.g. '-c batchSize=200'
diff: $(READY) $(CDK)
	$(CDK) diff $(CONTEXT) $(ARGS)

## deploy: deploy with the current AWS credentials; ARGS: cdk's, e.g. '-c alarmEmail=ops@example.com'
deploy: $(READY) $(CDK)
	$(CDK) deploy --require-approval broadening $(CONTEXT) $(ARGS)

# --- local tools ---
.PHONY: run invoke ops bench bench-quick chaos

## run: the whole pipeline on loopback until Ctrl-C (moto, embedded PostgreSQL, fleet); ARGS='--help'
run: $(READY)
	$(PY) -m local_stack $(ARGS)

## invoke: run the processor once on an event, like sam local invoke, without Docker: EVENT=events/valid.json
invoke: $(READY)
	@$(PY) -m local_stack.invoke $(if $(EVENT),--event $(EVENT)) $(ARGS)

## ops: the operators' tool: dlq peek|redrive, quarantine list|show|replay, submission; ARGS='--help'
ops: $(READY)
	@$(PY) -m ops $(ARGS)

## bench: handler vs its I/O floor and the Powertools idiom, costs, a 10,000-event submission (about 19 min); ARGS='--publish' also updates docs/bench.png, ARGS='--help' lists the flags
bench: $(READY)
	$(PY) -m bench $(BENCH_ARGS) $(ARGS)

## bench-quick: the same on small batches (about 20 s)
bench-quick: $(READY)
	$(PY) -m bench --quick $(BENCH_ARGS) $(ARGS)

## chaos: fault injection through the real handler, 600 s by default, heartbeat every 10 s; ARGS='--duration 60'
chaos: $(READY)
	$(PY) -m chaos $(if $(DURATION),--duration $(DURATION)) $(ARGS)
