# The front door: `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Parallel test workers; the e2e and integration suites each start their own stack per worker.
WORKERS ?= 2

.PHONY: run test test-unit test-integration test-cluster test-e2e lint install browser bench bench-layers bench-ablate bench-compare bench-count clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Start Redis (embedded unless CHECKOUT_REDIS_URL is set), the sandbox and the app.
run: $(STAMP)
	$(PY) -m sandbox.stack

lint: $(STAMP)
	$(PY) -m ruff check app sandbox tests
	$(PY) -m ruff format --check app sandbox tests
	$(PY) -m mypy

## Lint, then every suite in parallel (unit, integration, browser), then the API on a Redis Cluster.
test: lint browser
	$(PY) -m pytest -n $(WORKERS) --dist loadfile
	$(MAKE) --no-print-directory test-cluster

test-unit: $(STAMP)
	$(PY) -m pytest -m unit -n $(WORKERS)

test-integration: $(STAMP)
	$(PY) -m pytest -m integration -n $(WORKERS) --dist loadfile

## The API's integration tests against a three-master Redis Cluster started for the run.
test-cluster: $(STAMP)
	CHECKOUT_TEST_REDIS_CLUSTER=1 $(PY) -m pytest -n $(WORKERS) --dist loadfile \
		tests/integration/test_api.py tests/integration/test_scale.py

test-e2e: browser
	$(PY) -m pytest -m e2e -n $(WORKERS) --dist loadfile

## A Chromium for Playwright: Debian's if installed, else Playwright's own download.
browser: $(STAMP)
	@if [ -x /usr/bin/chromium ]; then echo "browser: /usr/bin/chromium"; \
	elif $(PY) -m playwright install chromium; then echo "browser: Playwright's chromium"; \
	else echo "No Chromium: apt-get install chromium (Debian) or 'python -m playwright install chromium'"; exit 1; fi

## Throughput and latency against a bare Flask route, measured in the same run (~3 min).
bench: $(VENV)/.bench
	@command -v wrk >/dev/null || { echo "Installing wrk (Debian)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null || \
		{ echo "wrk is missing: apt-get install wrk"; exit 1; }; }
	$(PY) -m tests.bench.run

## What each layer of a request costs, timed in process (about a minute).
bench-layers: $(VENV)/.bench
	$(PY) -m tests.bench.layers

## What each part of GET, the page and PUT costs under load, by taking it away (~6 min).
bench-ablate: $(VENV)/.bench
	@command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk"; exit 1; }
	$(PY) -m tests.bench.under_load

## This working tree against BASE (a git revision; default HEAD), both under load at once (~3 min).
bench-compare: $(VENV)/.bench
	@command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk"; exit 1; }
	BASE=$(BASE) $(PY) -m tests.bench.compare

## Instructions per request, counted by callgrind: steady where time is not (~1 min; with BASE=<rev>, that revision too).
bench-count: $(VENV)/.bench
	@command -v valgrind >/dev/null || { echo "Installing valgrind (Debian)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null || \
		{ echo "valgrind is missing: apt-get install valgrind"; exit 1; }; }
	BASE=$(BASE) $(PY) -m tests.bench.count

$(VENV)/.bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache test-results bench-results
