# The front door: `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The pages' catalogues, compiled from the .po files beside them (never committed).
CATALOGUES := $(patsubst %.po,%.mo,$(wildcard translations/*/LC_MESSAGES/messages.po))
# Installed, and the catalogues compiled: what running anything needs.
READY := $(STAMP) $(CATALOGUES)
# `make test-lowest`: a second venv with every runtime dependency at its lower bound.
LOWEST := .venv-lowest
LOWEST_PY := $(LOWEST)/bin/python
# The browser tests' Chromium: Debian's, else Playwright's own download (tests/e2e/conftest.py).
CHROMIUM := /usr/bin/chromium
# Parallel test workers; the e2e and integration suites each start their own stack per worker.
WORKERS ?= 2

.PHONY: docs translations run test test-unit test-integration test-cluster test-failover test-deploy test-e2e test-lowest lint install browser nginx bench bench-compare clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(READY)

translations/%.mo: translations/%.po $(STAMP)
	$(VENV)/bin/pybabel compile --statistics -i $< -o $@

## What the pages newly say, added to every catalogue (empty: to be translated), and what
## they no longer say, dropped. Near matches come back marked fuzzy, for a translator to check.
translations: $(STAMP)
	$(VENV)/bin/pybabel extract -F babel.cfg -k lazy_gettext --no-location --omit-header \
		-o translations/messages.pot .
	$(VENV)/bin/pybabel update -i translations/messages.pot -d translations --width 100 \
		--ignore-obsolete

## Start Redis (embedded unless CHECKOUT_REDIS_URL is set), the sandbox and the app.
run: $(READY)
	$(PY) -m sandbox.stack $(if $(LATENCY),--latency $(LATENCY))

## Write what the docs repeat from the code: the partners' error table.
docs: $(STAMP)
	$(PY) -m tests.write_docs

lint: $(STAMP)
	$(PY) -m ruff check app sandbox tests
	$(PY) -m ruff format --check app sandbox tests
	$(PY) -m mypy
	$(VENV)/bin/lint-imports

## A Chromium first (so a missing one stops the run at once), lint, then every suite in
## parallel (unit, integration, browser), then the API on a Redis Cluster.
test: browser $(READY)
	@$(MAKE) --no-print-directory lint
	$(PY) -m pytest -n $(WORKERS) --dist loadfile -m "not failover and not deploy"
	$(MAKE) --no-print-directory test-cluster

test-unit: $(READY)
	$(PY) -m pytest -m unit -n $(WORKERS)

test-integration: $(READY)
	$(PY) -m pytest -m integration -n $(WORKERS) --dist loadfile

## Redis nodes killed under load: a Sentinel primary, then a Cluster master (about two
## minutes); prints each failover's window and counts (test-results/failover-*.json).
test-failover: $(READY)
	$(PY) -m pytest -m failover tests/failover
	@cat test-results/failover-*.json

## deploy/nginx.conf as shipped in front of two production instances, under load: a reload,
## a rolling restart and a crash (about a minute); prints the figures (test-results/deploy.json).
test-deploy: nginx $(READY)
	$(PY) -m pytest -m deploy tests/deploy
	@cat test-results/deploy.json

# Debian's nginx, installed when missing (as root, with apt-get), for test-deploy.
nginx:
	@command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "nginx: installing Debian's nginx (apt-get)"; \
			export DEBIAN_FRONTEND=noninteractive; \
			apt-get update -qq && apt-get install -y -qq nginx >/dev/null; \
		fi; \
		command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || { \
			echo "No nginx for make test-deploy: run 'sudo apt-get install nginx', then again" >&2; \
			exit 1; }; }

## The API's integration tests against a three-master Redis Cluster started for the run.
test-cluster: $(READY)
	CHECKOUT_TEST_REDIS_CLUSTER=1 $(PY) -m pytest -n $(WORKERS) --dist loadfile \
		tests/integration/test_api.py tests/integration/test_scale.py tests/integration/test_ops.py \
		tests/integration/test_events.py

test-e2e: browser $(READY)
	$(PY) -m pytest -m e2e -n $(WORKERS) --dist loadfile

## The unit and integration suites with every runtime dependency at the lower bound that
## pyproject.toml declares (constraints/lowest.txt; the dev tools resolve as they may).
test-lowest: $(LOWEST)/.installed $(CATALOGUES)
	$(LOWEST_PY) constraints/check_lowest.py --installed
	$(LOWEST_PY) -m pytest -m "unit or integration" -n $(WORKERS) --dist loadfile

$(LOWEST)/.installed: pyproject.toml constraints/lowest.txt constraints/check_lowest.py
	$(PYTHON) constraints/check_lowest.py
	$(PYTHON) -m venv $(LOWEST)
	$(LOWEST_PY) -m pip install --quiet --upgrade pip
	$(LOWEST_PY) -m pip install --quiet -c constraints/lowest.txt -e '.[dev]'
	touch $@

# Exit 0 when Playwright's own Chromium is downloaded (the path tests/e2e/conftest.py checks).
PLAYWRIGHT_HAS_CHROMIUM := import os, sys; from playwright.sync_api import sync_playwright; \
	p = sync_playwright().start(); found = os.path.exists(p.chromium.executable_path); \
	p.stop(); sys.exit(not found)
# pyproject.toml's requirement on playwright, to install it alone before the rest.
PLAYWRIGHT_REQUIREMENT = $(shell $(PYTHON) -c 'import re, tomllib; \
	dev = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["dev"]; \
	print(next(d for d in dev if re.split(r"[^A-Za-z0-9_.-]", d)[0] == "playwright"))')

## A Chromium for the browser tests, before anything slow: Debian's if installed, else
## Playwright's if downloaded, else Debian's installed here (as root, with apt-get), else
## Playwright's downloaded (needs the internet), else stop with the command to run.
browser:
	@if [ -x $(CHROMIUM) ]; then echo "browser: $(CHROMIUM)"; exit 0; fi; \
	if [ -x $(PY) ] && $(PY) -c '$(PLAYWRIGHT_HAS_CHROMIUM)' 2>/dev/null; then \
		echo "browser: Playwright's chromium"; exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "browser: installing Debian's chromium (apt-get)"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
		if [ -x $(CHROMIUM) ]; then echo "browser: $(CHROMIUM)"; exit 0; fi; \
	fi; \
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV) || exit 1; \
	$(PY) -c 'import playwright' 2>/dev/null || \
		$(PY) -m pip install --quiet '$(PLAYWRIGHT_REQUIREMENT)' || exit 1; \
	echo "browser: downloading Playwright's chromium"; \
	if $(PY) -m playwright install chromium >$(VENV)/playwright-install.log 2>&1; then \
		echo "browser: Playwright's chromium"; exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "No Chromium for the browser tests, and Playwright's download failed ($(VENV)/playwright-install.log): run '$(PY) -m playwright install chromium' where the internet is reachable" >&2; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "No Chromium for the browser tests: 'apt-get install chromium' failed (above) and so did Playwright's download; run 'apt-get install chromium' once Debian's packages are reachable" >&2; \
	else \
		echo "No Chromium for the browser tests: run 'sudo apt-get install chromium', then make test again" >&2; \
	fi; \
	exit 1

# Debian's wrk, installed when missing (as root, with apt-get), for both bench targets.
WRK_CHECK = command -v wrk >/dev/null || { echo "Installing wrk (Debian)"; \
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null || \
	{ echo "wrk is missing: apt-get install wrk"; exit 1; }; }

## Throughput, latency, overload and CPU per request under the sandbox's realistic upstream
## latency against none, at 16, 64 and 256 connections (BENCH_CONNECTIONS), with PASS/MISS
## targets (~7 min; BENCH_SECONDS, BENCH_WARMUP). The worker model is app/gunicorn_config.py's:
## try CHECKOUT_WORKER_CLASS=gevent make bench.
bench: $(READY)
	@$(WRK_CHECK)
	$(PY) -m tests.bench.run

## This working tree against BASE (a git revision; default HEAD), both under load at once (~3 min).
bench-compare: $(READY)
	@$(WRK_CHECK)
	BASE=$(or $(BASE),HEAD) $(PY) -m tests.bench.compare

clean:
	rm -rf $(VENV) $(LOWEST) .pytest_cache .mypy_cache .ruff_cache test-results bench-results
